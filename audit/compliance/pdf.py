"""The compliance report as a PDF (reportlab), for the DPO to hand to the CNIL.

The PDF shows the signed JSON report's content and its signature: the JSON document is the one
that verifies (``compliance_report_verify`` or any Ed25519 tool, with the key published on
/journal/cle-publique/). Its own words follow the requester's language (issue 20); the rules'
titles and findings are the signed report's, in French.
"""
from __future__ import annotations

import datetime as dt
import json

from django.utils.translation import gettext as _
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import Spacer, Table

from ..pdf import _FIELDS, _TABLE, _build, _styles, hash_cell, p


def _local(value: str | None) -> str:
    if not value:
        return "—"
    from django.utils import timezone

    return timezone.localtime(dt.datetime.fromisoformat(value)).strftime("%d/%m/%Y %H:%M")


def compliance_report_pdf(document: dict) -> bytes:
    s = _styles()
    r = json.loads(document["payload"])
    org = r["organisation"]
    audit = r["audit"]
    ok = audit["ok"]
    story = [
        p(_("Rapport de conformité — caméras individuelles"), s["title"]),
        p(_("%(name)s (%(slug)s) — contrôle n° %(id)s du %(checked)s, édité le %(generated)s.") % {
            "name": org["name"], "slug": org["slug"], "id": audit["id"], "checked": _local(audit["checked_at"]),
            "generated": _local(r["generated_at"])}, s["small"]),
        Spacer(1, 3 * mm),
    ]
    if audit.get("could_not_look"):
        story.append(p(_("Le contrôle n'a pas pu tout vérifier : %(why)s") % {"why": audit["could_not_look"]},
                       s["bad"]))
    elif ok:
        story.append(p(_("Toutes les règles vérifiées sont respectées."), s["ok"]))
    else:
        story.append(p(_("%(count)s écart(s) constaté(s).") % {"count": len(r["violations"])}, s["bad"]))
    story.append(p(_("Règles vérifiées"), s["h2"]))
    data = [[p(h, s["head"]) for h in (_("Règle"), _("Textes"), _("Résultat"))]]
    for rule in r["rules"]:
        data.append([p(_(rule["title"]), s["cell"]), p(rule["articles"], s["cell"]),
                     p(_("respectée") if rule["holds"] else _("écart"), s["cell"])])
    story.append(Table(data, colWidths=[120 * mm, 40 * mm, 26 * mm], repeatRows=1, style=_TABLE))
    if r["violations"]:
        story.append(p(_("Écarts"), s["h2"]))
        data = [[p(h, s["head"]) for h in (_("Règle"), _("Objet"), _("Constat"), _("Depuis"))]]
        for v in r["violations"][:500]:
            data.append([p(v["rule"], s["cell"]), p(v["subject"], s["cell"]), p(v["message"], s["small"]),
                         p(_local(v["since"]), s["cell"])])
        story.append(Table(data, colWidths=[34 * mm, 40 * mm, 86 * mm, 26 * mm], repeatRows=1, style=_TABLE))
        if len(r["violations"]) > 500:
            story.append(p(_("… et %(count)s autres (voir le rapport JSON signé).")
                           % {"count": len(r["violations"]) - 500}, s["small"]))
    story.append(p(_("Paramètres"), s["h2"]))
    head = r.get("custody_head") or {}
    story.append(Table([
        [p(_("Cadre juridique"), s["head"]), p(org["jurisdiction"], s["cell"])],
        [p(_("Durée de conservation"), s["head"]), p(org["retention"], s["cell"])],
        [p(_("Conservation du journal"), s["head"]),
         p(_("%(years)s ans") % {"years": r["custody_retention_years"]}, s["cell"])],
        [p(_("Tête du journal"), s["head"]), p(_("entrée n° %(seq)s") % {"seq": head.get("seq", "—")}, s["cell"])],
        [p(_("Empreinte de la tête"), s["head"]), hash_cell(head.get("hash", ""), s["mono"])],
    ], colWidths=[48 * mm, 138 * mm], style=_FIELDS))
    story.append(p(_("Signature"), s["h2"]))
    story.append(Table([
        [p(_("Algorithme"), s["head"]), p(document["algorithm"], s["cell"])],
        [p(_("Clé (empreinte SHA-256)"), s["head"]), hash_cell(document["key_id"], s["mono"])],
        [p(_("Signature"), s["head"]), p(document["signature"], s["mono"])],
    ], colWidths=[48 * mm, 138 * mm], style=_FIELDS))
    story.append(Spacer(1, 3 * mm))
    story.append(p(_("La version JSON de ce rapport porte la même signature Ed25519 sur son champ « payload » ; la "
                     "clé publique du déploiement est publiée sur /journal/cle-publique/ et par « manage.py custody "
                     "export-key »."), s["small"]))
    return _build(story, pagesize=A4, title=_("Rapport de conformité — %(name)s") % {"name": org["name"]},
                  footer=_("Témoin — conformité — %(slug)s — contrôle n° %(id)s") % {"slug": org["slug"],
                                                                                     "id": audit["id"]})
