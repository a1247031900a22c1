"""Issue 20: an axe-core scan (npm axe-core 4.14.1, vendored in tests/browser/vendor) of the main pages
in Chromium reports no serious or critical violation, on desktop and on a phone."""
from pathlib import Path

import pytest

from ..browser.test_flow import _login, browser  # noqa: F401  (fixture)
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
