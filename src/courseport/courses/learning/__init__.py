"""What a learner does in a course, written as Course Builder 1.11 wrote it.

The course server's learner pages and ``courseport populate`` both go
through :class:`Learners`, so a synthetic cohort leaves the same kinds,
properties and value shapes as a real learner (server spec §3, §5.8, §6.5, §7).

>>> from courseport.courses.learning import user_id_for_email
>>> user_id_for_email("foo@bar.com")
'124317316405206137111'
"""

from .identity import Xsrf, user_id_for_email, xsrf_secret
from .outline import Outline, Viewer
from .progress import Progress
from .records import Learners, Submitted, User

__all__ = [
    "Learners", "Outline", "Progress", "Submitted", "User", "Viewer", "Xsrf",
    "user_id_for_email", "xsrf_secret",
]
