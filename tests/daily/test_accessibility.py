"""Issue 20: an axe-core scan (npm axe-core 4.14.1, vendored in tests/browser/vendor) of the main pages
in Chromium reports no serious or critical violation, on desktop and on a phone. Screenshots of the
yearly summary, the password change and the deactivation confirmation go to docs/screenshots/."""
from pathlib import Path

import pytest

from ..browser.test_flow import SHOTS, _login, browser  # noqa: F401  (fixture)
from .test_browser import DESKTOP, PHONE, day_of_work  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db(transaction=True)]
AXE = Path(__file__).resolve().parents[1] / "browser" / "vendor" / "axe-core-4.14.1" / "axe.min.js"


def serious_violations(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    assert result["testEngine"] == {"name": "axe-core", "version": "4.14.1"} and result["passes"], "axe did not run"
    return [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_main_pages_have_no_serious_accessibility_violation(browser, live_server, officer, make_user,  # noqa: F811
                                                                 day_of_work, viewport):  # noqa: F811
    make_user("chef.bernard", role="supervisor")
    make_user("maire", role="mayor")
    rec = day_of_work["day"][1]
    found = {}
    for user, paths in ((officer.username, ["/", f"/enregistrements/{rec.pk}/", "/a-completer/", "/tableau-de-bord/"]),
                        ("chef.bernard", ["/revue/", "/conservations/", "/effacements/", "/interventions/"]),
                        ("maire", ["/registre/", "/demandes-acces/", "/conservations/"])):
        # The scanner is injected as an inline script: the page's CSP (script-src 'self') is bypassed
        # for the test's own script only.
        page = browser.new_page(viewport=viewport, locale="fr-FR", bypass_csp=True)
        _login(page, live_server.url, user)
        for path in paths:
            page.goto(live_server.url + path)
            problems = serious_violations(page)
            if problems:
                found[path] = problems
        page.close()
    assert not found, found


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_yearly_summary_the_password_change_and_the_deactivation_confirmation_have_no_serious_violation(
        browser, live_server, officer, make_user, day_of_work, viewport):  # noqa: F811
    # The mayor's yearly summary (with a chart), an officer's password change, and the page that asks
    # the technical administrator to confirm a deactivation (reached through the users page's button).
    make_user("maire", role="mayor")
    make_user("admin.tech", role="admin")
    target = make_user("agent.durand", matricule="M043")
    suffix = "" if viewport is DESKTOP else "-phone"
    found = {}
    for user, path, shot in ((officer.username, "/mon-compte/mot-de-passe/", f"password-change{suffix}.png"),
                             ("maire", "/bilan-annuel/?annee=2026", f"annual-summary{suffix}.png")):
        page = browser.new_page(viewport=viewport, locale="fr-FR", bypass_csp=True)
        _login(page, live_server.url, user)
        page.goto(live_server.url + path)
        page.screenshot(path=str(SHOTS / shot), full_page=True)
        if problems := serious_violations(page):
            found[path] = problems
        page.close()

    page = browser.new_page(viewport=viewport, locale="fr-FR", bypass_csp=True)
    _login(page, live_server.url, "admin.tech")
    page.goto(live_server.url + "/utilisateurs/")
    page.locator(f"form:has(input[name=user][value='{target.pk}']):has(input[value=deactivate]) button").click()
    page.wait_for_load_state()
    assert "agent.durand" in page.inner_text("h1")  # the confirmation, nothing done yet
    page.screenshot(path=str(SHOTS / f"user-deactivate-confirm{suffix}.png"), full_page=True)
    if problems := serious_violations(page):
        found["deactivation confirmation"] = problems
    page.close()
    target.refresh_from_db()
    assert target.is_active
    assert not found, found
