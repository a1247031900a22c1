"""What a person typed in a form refused by a service, kept for the page they are sent back to.

The pages post, then redirect (so that reloading never posts twice); on a refusal the typed values
would be lost with the redirect. They are kept in the session under a key naming the form and the
object, and read once by the next rendering of that form (issue 20: "forms forget").
"""
from __future__ import annotations

SESSION_KEY = "form_drafts"


def draft_keep(request, key: str, values: dict) -> None:
    drafts = request.session.get(SESSION_KEY, {})
    drafts[key] = values
    request.session[SESSION_KEY] = drafts


def draft_take(request, key: str) -> dict | None:
    """The values kept for ``key``, removed from the session (shown once)."""
    drafts = request.session.get(SESSION_KEY)
    if not drafts or key not in drafts:
        return None
    values = drafts.pop(key)
    request.session[SESSION_KEY] = drafts
    return values


def tag_values(recording, draft: dict | None) -> dict:
    """The values the tagging form shows: what was typed if it was refused, else the recording's."""
    if draft is not None:
        return draft
    notified = {True: "true", False: "false"}.get(recording.subject_notified, "")
    return {"trigger_reason": recording.trigger_reason, "subject_notified": notified,
            "notice_omitted_reason": recording.notice_omitted_reason, "purpose": recording.purpose,
            "intervention": recording.intervention}
