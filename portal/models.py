"""Import every module's models so Base.metadata is complete (Alembic, tests)."""
from portal.core.db import Base
from portal.core import audit, models, signatures  # noqa: F401
from portal.core import notify, reminders, tasks, uploads  # noqa: F401
from portal.org import models as org_models  # noqa: F401
from portal.notices import models as notices_models  # noqa: F401
from portal.attendance import models as attendance_models  # noqa: F401
from portal.performance import models as performance_models  # noqa: F401
from portal.training import models as training_models  # noqa: F401
from portal.offboarding import models as offboarding_models  # noqa: F401

metadata = Base.metadata
