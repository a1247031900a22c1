"""The compliance audit: every legal invariant checked on a live deployment (database, store, log).

``invariants``: the rules as code; ``services``: a run (recorded, alerted), the signed report that a
data-protection officer hands to the CNIL (JSON and PDF). ``manage.py compliance audit`` runs it from
the command line; the beat task ``audit.compliance_audit`` runs it daily.
"""
