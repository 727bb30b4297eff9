/* sim/html.h: `tlsim report --html`: the report as one self-contained
 * page.
 *
 * The page holds everything it shows: inline CSS, the run's ladder items
 * as JSON in a <script type="application/json"> element, and the script
 * that draws them as inline SVG (sim/html.js, embedded at build time). It
 * loads nothing (a Content-Security-Policy of default-src 'none' says
 * so). The same report gives the same bytes: no timestamps, no paths but
 * the trace's own. Trace text is display-safe already (report.h); the
 * page escapes it for HTML and for JSON inside a script element.
 *
 * What the page does: a header with the run, its expectations and the
 * race queries' verdicts; the ladder, one lifeline per endpoint with a
 * lane of its operation queue beside it, packets as arrows from send to
 * arrival (lost ones end in an X), TLS rows and events on the lifelines;
 * zoom (buttons, +/- keys, Ctrl+wheel), a filter box that hides rows
 * that do not match, and a tooltip with every field of a packet (and the
 * packets coalesced in it), an operation, or a row. When drawn, the
 * element #status carries data-arrows, data-packets (arrows plus the
 * packets coalesced in them), data-lost, data-ops, data-tls and
 * data-errors (script errors caught by window.onerror, or "not run"):
 * tests/cli/report.sh reads them from headless Chromium's --dump-dom. */
#ifndef TLSIM_SIM_HTML_H
#define TLSIM_SIM_HTML_H

#include <stddef.h>

#include "sim/report.h"

/* sim_html_write writes the page for |r| to |path|, through a temporary
 * file in the same directory renamed over it, so |path| is either
 * untouched or complete. Returns 0, or a SIM_E* code with a one-line
 * reason naming |path| in |err|: SIM_ENOENT (no such directory), SIM_EPERM,
 * SIM_EFULL, SIM_EIO, SIM_ENOMEM. */
int sim_html_write(const sim_report *r, const char *path, char *err,
		   size_t errlen);

#endif
