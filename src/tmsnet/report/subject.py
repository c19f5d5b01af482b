"""One report path: every job's section drawn from its derivatives on disk.

Each tmsnet job (targeting, plan and dose, connectomes, group comparison,
propagation, TMS-EEG...) writes its outputs into a BIDS-Derivatives folder.
Its report section is drawn by one *section provider* that reads those files
and nothing else. The same provider serves

* the job's stand-alone report (:func:`write_job_report`), which the job's
  composer (e.g. :func:`tmsnet.jobs.target.run_target`) calls after
  its writer has finished, and
* the combined per-subject report (:func:`write_subject_report`,
  ``tmsnet report``), which gathers every provider of one subject.

Why the derivatives on disk, not the in-memory result objects: the combined
report must work from disk anyway (jobs run at other times, or on a cluster);
a report drawn from disk shows exactly what was written, so the report and the
files cannot disagree; and the report no longer depends on the science result
types, which breaks the import cycle workflow -> outputs -> report -> workflow
(writers never import the report; the composer calls write, then report).

Contract for a section provider
-------------------------------
A provider is a function ``provider(context: SubjectContext)`` registered with
:func:`register_section_provider` (``name``, ``order``: smaller first;
targeting uses 10, plan/dose 20, connectomes 30, TMS-EEG 40, group comparison
50, propagation 60 by convention). It

* reads only the derivatives below :attr:`SubjectContext.folder`
  (:meth:`SubjectContext.find` globs there and keeps only the files of the
  job report's run when :attr:`SubjectContext.select` is set);
* returns ``None`` (or an empty result) when its job did not run for the
  subject: nothing is shown then;
* otherwise returns a :class:`SubjectSections` (or just a list of
  :class:`~tmsnet.report.html.ReportSection`): sections built with
  :mod:`tmsnet.report.html` (anchors unique: prefix them with the provider
  name), ``summary`` rows ``(label, plain text)`` for the summary card (e.g.
  ``("Scalp point", "(-52.1, 38.0, 60.2) mm T1w")``, ``("Dose", "120 % rMT")``),
  plain-language ``warnings`` (e.g. ``"High motion: ..."``), ``coordinates``
  (:class:`SummaryCoordinate` rows: every target / scalp point in each space,
  shown as one table ``#summary-coordinates`` at the top of the card), and
  optionally a ``headline_html`` (safe HTML; the first one given heads the
  summary card);
* needs no network and inlines everything (figures via
  :func:`~tmsnet.report.html.figure_to_base64_png`; interactive parts via
  ``ReportSection.scripts``, with a static fallback).

A job that writes one file per run builds its result with
:func:`sections_per_file` (``draw(out, index, path)`` per file) and documents
itself with ``%(section_provider)s`` (:func:`tmsnet.utils.docs.fill_doc`).

A provider that raises is reported in the page (an error section and a
warning), so one failing job does not hide the others.

Modules holding providers are listed in :data:`PROVIDER_MODULES` (one dotted
name per line, like ``_COMMAND_MODULES`` of :mod:`tmsnet.cli`); they register
their providers when imported. tmsnet's own live in :mod:`tmsnet.report.providers`
(a missing one is an error); a listed plug-in module of a distribution that is
not installed is skipped.
Group-level jobs (``tmsnet compare``, ``tmsnet propagate``) write outside any
``sub-<label>/`` folder: their providers are used with a context whose
``subject`` is None (the whole output folder).

``tmsnet report DERIVATIVES_DIR --participant-label 01`` (see
:mod:`tmsnet.report.commands`) writes one report per subject.
"""

from __future__ import annotations

import html
import importlib
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tmsnet import __version__
from tmsnet.exceptions import (
    DerivativesValidationError,
    InputFileNotFoundError,
    InvalidParameterError,
    TmsnetError,
)
from tmsnet.io.staging import final_output_dir
from tmsnet.parallel import available_workers
from tmsnet.report.html import ReportSection, render_report
from tmsnet.utils.docs import add_doc, fill_doc

__all__ = [
    "PROVIDER_MODULES",
    "SubjectContext",
    "SubjectReport",
    "SubjectSections",
    "SummaryCoordinate",
    "build_subject_report",
    "format_xyz",
    "load_json",
    "register_section_provider",
    "save_subject_report",
    "section_providers",
    "sections_per_file",
    "unregister_section_provider",
    "write_job_report",
    "write_subject_report",
]

logger = logging.getLogger(__name__)

#: Modules imported before assembling a report so that their providers register.
PROVIDER_MODULES: tuple[str, ...] = (
    "tmsnet.report.providers.targeting",
    "tmsnet.report.providers.plan",
    "tmsnet.report.providers.connectome",
    "tmsnet.report.providers.tep",
    "tmsnet.report.providers.compare",
    "tmsnet.report.providers.propagation",
)


@dataclass(frozen=True)
class SubjectContext:
    """Where a provider finds the derivatives it draws.

    Attributes
    ----------
    derivatives_dir : Path
        The tmsnet derivatives folder (holding ``sub-<label>/``).
    subject : str or None
        Subject label without ``sub-``; None for the whole folder (group-level
        jobs such as ``tmsnet compare``).
    session : str or None
        Session label without ``ses-``, or None for all / no sessions.
    select : str or None
        Only files whose name starts with this (e.g. the run prefix
        ``sub-01_task-rest_run-1``): a job report shows the run just written,
        not every run of the folder. None: every file.
    n_jobs : int
        Processes a provider may draw its figures in (:func:`tmsnet.parallel.forked_backend`);
        1 draws them in this process. The page is the same byte for byte.
    """

    derivatives_dir: Path
    subject: str | None
    session: str | None = None
    select: str | None = None
    n_jobs: int = 1

    @property
    def folder(self) -> Path:
        """``derivatives_dir/sub-<label>[/ses-<label>]`` (``derivatives_dir`` without a subject)."""
        if self.subject is None:
            return self.derivatives_dir
        folder = self.derivatives_dir / f"sub-{self.subject}"
        return folder / f"ses-{self.session}" if self.session else folder

    @property
    def prefix(self) -> str:
        """``sub-<label>[_ses-<label>]`` (``group`` without a subject)."""
        if self.subject is None:
            return "group"
        return f"sub-{self.subject}" + (f"_ses-{self.session}" if self.session else "")

    def find(self, pattern: str) -> list[Path]:
        """Files below :attr:`folder` matching a glob ``pattern`` (recursive), sorted.

        With :attr:`select`, only files whose name starts with it.
        """
        return sorted(p for p in self.folder.rglob(pattern) if p.is_file()
                      and (self.select is None or p.name.startswith(self.select)))


@dataclass(frozen=True)
class SummaryCoordinate:
    """One point of the summary card's coordinate table.

    Attributes
    ----------
    label : str
        What the point is, e.g. ``"Target (cluster)"`` or ``"Scalp point"``.
    space : str
        Its space, e.g. ``"MNI152NLin2009cAsym"`` or ``"T1w"``.
    xyz_mm : tuple of 3 floats
        Coordinates (mm) in ``space``.
    source : str
        The job (and file) it comes from, e.g. ``"targeting"`` or ``"plan"``.
    """

    label: str
    space: str
    xyz_mm: tuple[float, float, float]
    source: str = ""


@dataclass
class SubjectSections:
    """What one provider contributes to a subject's report.

    Attributes
    ----------
    sections : list of ReportSection
        Sections in display order.
    summary : list of (str, str)
        Rows of the summary card (label, plain-text value).
    warnings : list of str
        Plain-language QC warnings shown in the summary card.
    headline_html : str or None
        Safe HTML for the top of the summary card (e.g. the target).
    coordinates : list of SummaryCoordinate
        Points for the card's coordinate table (targets in each space, scalp point).
    """

    sections: list[ReportSection] = field(default_factory=list)
    summary: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    headline_html: str | None = None
    coordinates: list[SummaryCoordinate] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.sections or self.summary or self.warnings or self.headline_html
                    or self.coordinates)

    def add_point(self, label: str, space: str, xyz_mm: Sequence[float], source: str = "") -> None:
        """Append a :class:`SummaryCoordinate` (``xyz_mm`` in mm, in ``space``) to :attr:`coordinates`."""
        self.coordinates.append(SummaryCoordinate(label, space, tuple(xyz_mm), source))


SectionProvider = Callable[[SubjectContext], "SubjectSections | Sequence[ReportSection] | None"]
_PROVIDERS: dict[str, tuple[int, SectionProvider]] = {}


def register_section_provider(
    name: str, func: SectionProvider, *, order: int = 100, replace: bool = False
) -> SectionProvider:
    """Register a section provider (see the module docstring for the contract).

    Parameters
    ----------
    name : str
        Unique name (letters, digits, ``-``, ``_``), e.g. ``"dose"``.
    func : callable
        ``func(context: SubjectContext) -> SubjectSections | list[ReportSection] | None``.
    order : int
        Position in the report (smaller first).
    replace : bool
        Replace a provider already registered under ``name``.

    Returns
    -------
    callable
        ``func`` (so this can be used as a decorator helper).

    Raises
    ------
    InvalidParameterError
        If ``name`` is invalid, already taken (and not ``replace``), or
        ``func`` is not callable.
    """
    if not re.match(r"^[A-Za-z][A-Za-z0-9_-]*$", str(name)):
        raise InvalidParameterError(f"Provider name {name!r} must start with a letter and contain "
                                    "only letters, digits, '-' and '_'.")
    if not callable(func):
        raise InvalidParameterError(f"Provider {name!r} must be callable, got {type(func).__name__}.")
    if name in _PROVIDERS and not replace:
        raise InvalidParameterError(f"A section provider named {name!r} is already registered; "
                                    "pass replace=True to replace it.")
    _PROVIDERS[name] = (int(order), func)
    return func


def unregister_section_provider(name: str) -> None:
    """Remove a provider (no error if it is not registered)."""
    _PROVIDERS.pop(name, None)


def _load_provider_modules() -> None:
    for module in PROVIDER_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            # A listed plug-in from another, uninstalled distribution is skipped; tmsnet's own
            # provider modules always exist, so a missing one is a real error.
            if module.split(".")[0] == "tmsnet" or exc.name is None or not module.startswith(exc.name):
                raise
            logger.debug("report provider module %s is not installed", module)


def section_providers() -> list[tuple[str, SectionProvider]]:
    """The registered providers ``(name, func)`` in report order."""
    _load_provider_modules()
    return [(name, func) for name, (_, func) in sorted(_PROVIDERS.items(), key=lambda kv: (kv[1][0], kv[0]))]


def _as_sections(result: Any) -> SubjectSections:
    if result is None:
        return SubjectSections()
    if isinstance(result, SubjectSections):
        return result
    sections = list(result)
    if not all(isinstance(s, ReportSection) for s in sections):
        raise TypeError("a provider must return SubjectSections, a list of ReportSection or None")
    return SubjectSections(sections=sections)


add_doc("section_provider", """Parameters
----------
context : SubjectContext
    The job's derivatives: a subject's folder, one run's files (with
    ``context.select``) or, for a group-level job, the whole output folder.

Returns
-------
SubjectSections or None
    None when the job wrote none of the files read here.""")


def sections_per_file(
    files: Sequence[Path], draw: Callable[[SubjectSections, int, Path], None], *, start: int = 0
) -> SubjectSections | None:
    """What a provider shows of a job that writes one file per run.

    Parameters
    ----------
    files : sequence of Path
        The job's files (e.g. from :meth:`SubjectContext.find`), in display order.
    draw : callable
        ``draw(out, index, path)`` adds the sections, summary rows and warnings
        of one file to ``out``.
    start : int
        Index of the first file (anchors count from it).

    Returns
    -------
    SubjectSections or None
        None when ``files`` is empty.
    """
    if not files:
        return None
    out = SubjectSections()
    for index, path in enumerate(files, start=start):
        draw(out, index, path)
    return out


# --------------------------------------------------------------------------- helpers

def load_json(path: str | Path) -> dict[str, Any]:
    """Read a JSON output of a tmsnet job.

    Parameters
    ----------
    path : path
        The file.

    Returns
    -------
    dict

    Raises
    ------
    InvalidParameterError
        If the file cannot be read or is not a JSON object.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DerivativesValidationError(f"Cannot read {path}: {exc}. Re-run the job that wrote it.") from exc
    if not isinstance(data, dict):
        raise InvalidParameterError(f"{path} does not hold a JSON object; re-run the job that wrote it.")
    return data


def format_xyz(xyz: Sequence[float], *, digits: int = 1) -> str:
    """``"(x, y, z)"`` with ``digits`` decimals (mm values; the unit is added by the caller)."""
    return "(" + ", ".join(f"{float(v):.{digits}f}" for v in xyz) + ")"


# --------------------------------------------------------------------------- assembly

_LABEL_RE = re.compile(r"^[A-Za-z0-9]+$")


def _check_label(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    text = str(value).removeprefix(f"{what}-")
    if not _LABEL_RE.match(text):
        raise InvalidParameterError(f"{what} label {value!r} must be letters and digits only "
                                    f"(e.g. '01' or '{what}-01').")
    return text


@dataclass
class SubjectReport:
    """One subject's assembled report.

    Attributes
    ----------
    context : SubjectContext
        Whose report, from which folder.
    html : str
        The self-contained HTML document.
    jobs : list of str
        Providers that found something to show, in report order.
    summary : list of (str, str)
        Rows of the summary card.
    warnings : list of str
        Plain-language QC warnings (deduplicated).
    coordinates : list of SummaryCoordinate
        The card's coordinate table.
    providers : list of str
        Providers asked.
    """

    context: SubjectContext
    html: str
    jobs: list[str]
    summary: list[tuple[str, str]]
    warnings: list[str]
    coordinates: list[SummaryCoordinate]
    providers: list[str]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready facts (no HTML)."""
        return {
            "subject": self.context.subject,
            "session": self.context.session,
            "jobs": list(self.jobs),
            "summary": {k: v for k, v in self.summary},
            "warnings": list(self.warnings),
            "coordinates": [{"label": c.label, "space": c.space, "x": c.xyz_mm[0], "y": c.xyz_mm[1],
                             "z": c.xyz_mm[2], "units": "mm", "source": c.source}
                            for c in self.coordinates],
            "size_bytes": len(self.html.encode("utf-8")),
        }


def _coordinates_html(rows: Sequence[SummaryCoordinate]) -> str:
    if not rows:
        return ""
    esc = html.escape
    parts = ['<table class="data" id="summary-coordinates"><caption>Coordinates in each space (mm)'
             '</caption><thead><tr><th scope="col">Point</th><th scope="col">Space</th>'
             '<th scope="col">x</th><th scope="col">y</th><th scope="col">z</th>'
             '<th scope="col">From</th></tr></thead><tbody>']
    for c in rows:
        x, y, z = (float(v) for v in c.xyz_mm)
        parts.append(
            f'<tr data-label="{esc(c.label, quote=True)}" data-space="{esc(c.space, quote=True)}" '
            f'data-x="{x:.2f}" data-y="{y:.2f}" data-z="{z:.2f}"><th scope="row">{esc(c.label)}</th>'
            f'<td>{esc(c.space)}</td><td class="num">{x:.1f}</td><td class="num">{y:.1f}</td>'
            f'<td class="num">{z:.1f}</td><td>{esc(c.source)}</td></tr>')
    parts.append("</tbody></table>")
    return "".join(parts)


def _select_providers(providers: Sequence[str] | None) -> list[tuple[str, SectionProvider]]:
    registered = section_providers()
    if providers is None:
        return registered
    known = {name for name, _ in registered}
    unknown = [p for p in providers if p not in known]
    if unknown:
        raise InvalidParameterError(f"Unknown section provider(s) {list(unknown)}; "
                                    f"registered: {sorted(known)}.")
    return [(n, f) for n, f in registered if n in providers]


def _collect(context: SubjectContext, registered: Sequence[tuple[str, SectionProvider]]
             ) -> tuple[SubjectSections, list[str]]:
    """Ask every provider; a failing one becomes an error section and a warning."""
    out = SubjectSections()
    ran: list[str] = []
    for name, func in registered:
        try:
            part = _as_sections(func(context))
        except TmsnetError:
            raise  # a bad derivative file: the command says which, in one line, and writes nothing
        except Exception as exc:  # noqa: BLE001 - shown in the report, the others still render
            logger.debug("section provider %s failed for %s", name, context.prefix, exc_info=True)
            out.warnings.append(f"The '{name}' section could not be built ({type(exc).__name__}: {exc}).")
            out.sections.append(ReportSection(
                f"{name} (failed)",
                f'<div class="warnings"><p>This section could not be built: '
                f"{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</p></div>",
                f"{name}-failed"))
            continue
        if not part:
            continue
        ran.append(name)
        out.sections.extend(part.sections)
        out.summary.extend(part.summary)
        out.warnings.extend(part.warnings)
        out.coordinates.extend(part.coordinates)
        out.headline_html = out.headline_html or part.headline_html
    out.warnings = list(dict.fromkeys(out.warnings))
    return out, ran


def _summary_card(parts: SubjectSections, ran: Sequence[str]) -> str:
    esc = html.escape
    rows = [("Jobs in this report", ", ".join(ran) or "none")] + parts.summary
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows)
    if parts.warnings:
        notes = "".join(f"<li>{esc(w)}</li>" for w in parts.warnings)
        qc = f'<div class="warnings" role="alert"><strong>Check before use</strong><ul>{notes}</ul></div>'
    else:
        qc = '<div class="ok">No quality warnings.</div>'
    return f"{parts.headline_html or ''}{_coordinates_html(parts.coordinates)}<dl>{items}</dl>{qc}"


def build_report(
    context: SubjectContext,
    *,
    providers: Sequence[str] | None = None,
    title: str | None = None,
    subtitle: str | None = None,
) -> SubjectReport:
    """Ask the providers about one context and assemble the page (nothing written).

    The one assembly behind both the per-subject report
    (:func:`build_subject_report`) and a job's report (:func:`write_job_report`).

    Parameters
    ----------
    context : SubjectContext
        Which derivatives (folder, subject, session, selected run).
    providers : sequence of str, optional
        Only these registered providers (default all, in report order).
    title, subtitle : str, optional
        Page title and subtitle (default: the per-subject report's).

    Returns
    -------
    SubjectReport

    Raises
    ------
    InputFileNotFoundError
        If the folder does not exist, or no provider found anything to show.
    InvalidParameterError
        If a provider name is unknown.
    """
    if not context.folder.is_dir():
        raise InputFileNotFoundError(f"No derivatives for {context.prefix}: {context.folder} does not "
                                     "exist. Run a tmsnet job for this subject first.")
    registered = _select_providers(providers)
    parts, ran = _collect(context, registered)
    if not parts.sections and not parts.summary:
        raise InputFileNotFoundError(f"Nothing to report for {context.prefix} in {context.derivatives_dir}: "
                                     f"no registered job ({[n for n, _ in registered]}) found outputs.")
    document = render_report(
        title=title or f"tmsnet report: {context.prefix}",
        subtitle=subtitle or "Everything tmsnet computed for this subject",
        summary_html=_summary_card(parts, ran),
        sections=parts.sections,
        footer_html=html.escape(f"Generated by tmsnet {__version__} from the derivatives in "
                                f"{final_output_dir(context.derivatives_dir)}."),
    )
    return SubjectReport(context=context, html=document, jobs=ran, summary=parts.summary,
                         warnings=parts.warnings, coordinates=parts.coordinates,
                         providers=[n for n, _ in registered])


add_doc("subject_report", """derivatives_dir : path
    The tmsnet derivatives folder.
subject : str
    Subject label (``01`` or ``sub-01``).
session : str, optional
    Session label; default all sessions together. Jobs that write no
    session entity (the treatment plan) are only found without it.
providers : sequence of str, optional
    Only these registered providers (default all, in order).""")


@fill_doc
def build_subject_report(
    derivatives_dir: str | Path,
    subject: str,
    *,
    session: str | None = None,
    providers: Sequence[str] | None = None,
) -> SubjectReport:
    """Ask every provider and assemble one subject's report (nothing written).

    Parameters
    ----------
    %(subject_report)s

    Returns
    -------
    SubjectReport
        Its ``html`` is the self-contained document.

    Raises
    ------
    InputFileNotFoundError
        If the subject has no folder, or no provider found anything to show.
    InvalidParameterError
        If a label or provider name is invalid.
    """
    context = SubjectContext(Path(derivatives_dir), _check_label(subject, "sub"),
                             _check_label(session, "ses"))
    return build_report(context, providers=providers)


def write_job_report(
    out_dir: str | Path,
    *,
    providers: Sequence[str],
    filename: str,
    title: str,
    subject: str | None = None,
    session: str | None = None,
    select: str | None = None,
    subtitle: str | None = None,
    sidecar: Mapping[str, Any] | None = None,
    n_jobs: int | None = 1,
) -> Path:
    """Write one job's stand-alone report from what its writer has just written.

    The job's composer calls this after the job's writer has finished: the
    page is :func:`build_report` of the job's provider(s), the same code as
    the job's part of the per-subject report.

    Parameters
    ----------
    out_dir : path
        The job's output (derivatives) folder.
    providers : sequence of str
        The job's section provider(s), e.g. ``("targeting",)``, ``("tep",)``,
        ``("connectome",)``, ``("compare",)``, ``("propagation",)``.
    filename : str
        Report file name inside ``out_dir``, e.g. ``"sub-01_task-rest_report.html"``.
    title : str
        Page title, e.g. ``"tmsnet targeting report: sub-01"``.
    subject, session : str, optional
        Labels (with or without ``sub-`` / ``ses-``) whose folder the providers
        read; no subject: the whole ``out_dir`` (group-level jobs).
    select : str, optional
        Only files whose name starts with this (the run just written, e.g.
        ``"sub-01_task-rest"``); default every file of the folder.
    subtitle : str, optional
        Line under the title.
    sidecar : mapping, optional
        JSON written beside the report (``<filename stem>.json``), e.g. the
        job's provenance from :func:`tmsnet.io.provenance.make_sidecar`.
        None: no sidecar is written (a job may have written it already, as the
        targeting writer does with its run summary).
    n_jobs : int or None
        Processes the figures may be drawn in (see :class:`SubjectContext`); None: the
        available CPUs (:func:`tmsnet.parallel.available_workers`). Default 1.

    Returns
    -------
    Path
        The report.

    Raises
    ------
    InputFileNotFoundError
        If the providers found nothing to show.
    InvalidParameterError
        If a label, provider or file name is invalid.
    """
    from tmsnet.io.atomic import atomic_write_json, atomic_write_text
    from tmsnet.io.provenance import sidecar_path_for

    if Path(filename).name != filename or not filename.endswith(".html"):
        raise InvalidParameterError(f"filename must be a plain '<name>.html' file name, got {filename!r}.")
    context = SubjectContext(Path(out_dir), _check_label(subject, "sub"), _check_label(session, "ses"),
                             select, n_jobs=available_workers(n_jobs))
    report = build_report(context, providers=list(providers), title=title, subtitle=subtitle)
    path = Path(out_dir) / filename
    atomic_write_text(path, report.html)
    if sidecar is not None:
        atomic_write_json(sidecar_path_for(path), dict(sidecar))
    return path


def save_subject_report(report: SubjectReport, out_dir: str | Path | None = None) -> Path:
    """Write ``sub-<label>[_ses-<label>]_report.html`` and its JSON sidecar, atomically.

    Parameters
    ----------
    report : SubjectReport
        From :func:`build_subject_report`.
    out_dir : path, optional
        Destination folder (default: the derivatives folder).

    Returns
    -------
    Path
        The report.
    """
    from tmsnet.io.atomic import atomic_write_json, atomic_write_text, ensure_output_dir
    from tmsnet.io.provenance import make_sidecar, sidecar_path_for

    context = report.context
    folder = ensure_output_dir(out_dir) if out_dir is not None else context.derivatives_dir
    path = Path(folder) / f"{context.prefix}_report.html"
    facts = report.as_dict()
    sidecar = make_sidecar(
        description="Per-subject report of every tmsnet job (self-contained HTML).",
        parameters={"subject": context.subject, "session": context.session,
                    "derivatives_dir": str(context.derivatives_dir), "providers": report.providers},
        inputs={}, space=None,
        extra={"Size_bytes": facts["size_bytes"], "Jobs": facts["jobs"], "Warnings": facts["warnings"],
               "Coordinates": facts["coordinates"]},
    )
    atomic_write_text(path, report.html)
    atomic_write_json(sidecar_path_for(path), sidecar)
    return path


@fill_doc
def write_subject_report(
    derivatives_dir: str | Path,
    subject: str,
    *,
    session: str | None = None,
    providers: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
) -> Path:
    """Write ``<out_dir>/sub-<label>[_ses-<label>]_report.html`` (+ JSON sidecar), atomically.

    Parameters
    ----------
    %(subject_report)s
    out_dir : path, optional
        Destination folder (default: ``derivatives_dir``).

    Returns
    -------
    Path
        The report.
    """
    report = build_subject_report(derivatives_dir, subject, session=session, providers=providers)
    return save_subject_report(report, out_dir)
