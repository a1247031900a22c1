"""Retention of evidence: how long a recording is kept, what keeps it longer, and its erasure.

CSI L241-2 and R241-13: recordings are erased one month after the day they were made, unless used
in a judicial, administrative or disciplinary procedure. CSI R241-14: every erasure is logged, and
the traces (the log and what it refers to) are kept three years.

- ``dates``: retention ends, from a recording time that can be trusted (R241-10, R241-13);
- ``policy``: an organisation's period (France: one month, fixed by law);
- ``regimes``: videoprotection images a partner hands over: the period of its prefectoral
  authorisation, at most one month, from the images' time (CSI L252-5);
- ``objects``: what a recording owns in the store, which follows its fate;
- ``holds``: conservation pour procédure, bound to the recordings it covered when placed;
- ``sweep``: the two-phase erasure (intent logged, bytes deleted, completion logged) and what
  follows a recording (duplicates, copies, comments, export packages, shares); the leftovers of
  unfinished writes;
- ``erasure``: the same two phases for objects that are not a recording's own (packages, Axis
  attachments); ``owners``: who owns each store object (orphans are registered, then erased);
- ``notices``: erasures announced to supervisors in advance;
- ``traceability``: the three-year purge of the rows behind the register (R241-14);
- ``selectors`` (holds, erasures coming up) and ``tasks`` (the beat entries).
"""
from .dates import (  # noqa: F401  (the date arithmetic, imported from here by the rest of the code)
    CameraClock,
    RetentionDecision,
    retention_basis_time,
    retention_decide,
    retention_end,
    retention_period,
)


class RetentionRefused(Exception):
    """Erasure or a retention change that the law or a hold forbids; the message says which."""
