"""Import every module's models so Base.metadata is complete (Alembic, tests)."""
from portal.core.db import Base
from portal.core import audit, models, signatures  # noqa: F401
from portal.core import notify, reminders, tasks, uploads  # noqa: F401
from portal.org import models as org_models  # noqa: F401
from portal.notices import models as notices_models  # noqa: F401

metadata = Base.metadata
