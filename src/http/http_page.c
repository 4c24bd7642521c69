/*
 * http_page: the HTML the server writes.  Pages are built server-side,
 * work without JavaScript (the CSP allows none) and read on a phone
 * (one column, the picture scales).  A followed message is drawn per
 * recipient as inline SVG: a box per hop (server and organisation,
 * action and status, time, delay since the previous hop, where it went),
 * arrows between them and a last box that says honestly how the trail
 * ends; the same is told in text below it, and the picture's title and
 * description are its accessible text.  Everything a peer wrote is
 * escaped; the secret is never written.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "http/http_int.h"
#include "msgtrk/date.h"
#include "msgtrk/str.h"
#include "msgtrk/tstatus.h"
#include "mtqp/trail.h"

/* The picture's geometry (user units; the SVG scales to the width). */
#define SVG_W 340
#define BOX_X 10
#define BOX_W 320
#define BOX_H 96
#define GAP 44
#define END_LINE 18
/* Characters on one line of a box (13 px text in 300 units). */
#define LINE_CHARS 44

const char page_css[] =
    ":root{--fg:#1b1f24;--muted:#57606a;--bg:#fff;--line:#d0d7de;"
    "--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--info:#0969da}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',"
    "Roboto,sans-serif;color:var(--fg);background:var(--bg)}\n"
    "header{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:"
    "baseline;padding:.75rem 1rem;border-bottom:1px solid var(--line)}\n"
    "header .brand{font-weight:700;font-size:1.2rem;color:var(--fg);"
    "text-decoration:none}\n"
    "nav a{margin-right:1rem}\n"
    "main{max-width:44rem;margin:0 auto;padding:1rem}\n"
    "h1,h2,p,li,code{overflow-wrap:anywhere}\n"
    "footer{max-width:44rem;margin:2rem auto;padding:0 1rem;color:"
    "var(--muted);font-size:.85rem}\n"
    "label{display:block;font-weight:600;margin:.75rem 0 .25rem}\n"
    "input[type=text],input[type=password],select{width:100%;padding:"
    ".6rem;font:inherit;border:1px solid var(--line);border-radius:6px}\n"
    "button{margin-top:1rem;padding:.6rem 1.4rem;font:inherit;"
    "font-weight:600;color:#fff;background:var(--info);border:0;"
    "border-radius:6px}\n"
    "details{margin-top:1rem}\n"
    ".error{padding:.75rem;border-left:4px solid var(--bad);background:"
    "#ffebe9}\n"
    ".rcpt{margin:2rem 0;padding-top:1rem;border-top:1px solid "
    "var(--line)}\n"
    ".rcpt h2{font-size:1.1rem;word-break:break-all}\n"
    ".state{font-size:.85rem;padding:.1rem .5rem;border-radius:1rem;"
    "color:#fff;white-space:nowrap}\n"
    ".state-delivered{background:var(--ok)}.state-untracked{background:"
    "var(--warn)}.state-failed{background:var(--bad)}.state-delayed,"
    ".state-stopped{background:var(--info)}\n"
    "figure{margin:1rem 0}\n"
    "svg.path{width:100%;max-width:30rem;height:auto;display:block}\n"
    "svg .hop rect{fill:#f6f8fa;stroke:var(--line);stroke-width:1.5}\n"
    "svg text{font:13px system-ui,sans-serif;fill:var(--fg)}\n"
    "svg text.h{font-weight:700;font-size:14px}\n"
    "svg text.m{fill:var(--muted)}\n"
    "svg .arrow{stroke:var(--muted);stroke-width:2}\n"
    "svg marker path{fill:var(--muted)}\n"
    "svg .end rect{stroke-width:2}\n"
    "svg .end-delivered rect{fill:#dafbe1;stroke:var(--ok)}\n"
    "svg .end-untracked rect{fill:#fff8c5;stroke:var(--warn)}\n"
    "svg .end-failed rect{fill:#ffebe9;stroke:var(--bad)}\n"
    "svg .end-delayed rect,svg .end-stopped rect{fill:#ddf4ff;stroke:"
    "var(--info)}\n"
    "ol.hops{padding-left:1.5rem}ol.hops li{margin:.4rem 0;word-break:"
    "break-word}\n"
    "p.end{font-weight:600}\n"
    "table{border-collapse:collapse;width:100%;font-size:.9rem}\n"
    "td,th{border-bottom:1px solid var(--line);padding:.3rem;text-align:"
    "left;vertical-align:top;word-break:break-word}\n"
    ".muted{color:var(--muted)}\n";

int
page_esc(struct buf *b, const char *s)
{
	int rc = 0;

	if (s == NULL)
		return 0;
	for (; *s != '\0' && rc == 0; s++)
		switch (*s) {
		case '&':
			rc = buf_adds(b, "&amp;");
			break;
		case '<':
			rc = buf_adds(b, "&lt;");
			break;
		case '>':
			rc = buf_adds(b, "&gt;");
			break;
		case '"':
			rc = buf_adds(b, "&quot;");
			break;
		case '\'':
			rc = buf_adds(b, "&#39;");
			break;
		default:
			rc = buf_addc(b, *s);
		}
	return rc;
}

int
page_begin(struct buf *b, const char *title, const char *login)
{
	int rc = 0;

	rc |= buf_adds(b,
	    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
	    "<meta charset=\"utf-8\">\n"
	    "<meta name=\"viewport\" content=\"width=device-width, "
	    "initial-scale=1\">\n<title>");
	rc |= page_esc(b, title);
	rc |= buf_adds(b,
	    " - msgtrk</title>\n"
	    "<link rel=\"stylesheet\" href=\"/style.css\">\n</head>\n<body>\n"
	    "<header><a class=\"brand\" href=\"/\">msgtrk</a>\n<nav>"
	    "<a href=\"/\">Track a message</a><a href=\"/sent\">My sent "
	    "mail</a><a href=\"/admin\">Operator</a></nav>");
	if (login != NULL) {
		rc |= buf_adds(b, "<span class=\"muted\">");
		rc |= page_esc(b, login);
		rc |= buf_adds(b, "</span>");
	}
	rc |= buf_adds(b, "</header>\n<main>\n");
	return rc;
}

int
page_end(struct buf *b, const char *hostname)
{
	int rc = 0;

	rc |= buf_adds(b,
	    "</main>\n<footer>Message tracking (RFC 3885, RFC "
	    "3887) at ");
	rc |= page_esc(b, hostname);
	rc |= buf_adds(b, ".</footer>\n</body>\n</html>\n");
	return rc;
}

int
page_track_form(struct buf *b, const char *csrf, const char *error)
{
	int rc = 0;

	if (error != NULL) {
		rc |= buf_adds(b, "<p class=\"error\" role=\"alert\">");
		rc |= page_esc(b, error);
		rc |= buf_adds(b, "</p>\n");
	}
	rc |= buf_adds(b,
	    "<form method=\"post\" action=\"/track\" class=\"track\">\n"
	    "<input type=\"hidden\" name=\"csrf\" value=\"");
	rc |= page_esc(b, csrf);
	rc |= buf_adds(b,
	    "\">\n"
	    "<label for=\"uri\">Tracking link</label>\n"
	    "<input type=\"text\" id=\"uri\" name=\"uri\" inputmode=\"url\" "
	    "autocomplete=\"off\" autocapitalize=\"off\" spellcheck=\"false\" "
	    "placeholder=\"mtqp://mail.example.com/track/...\" "
	    "aria-describedby=\"uri-help\">\n"
	    "<p id=\"uri-help\" class=\"muted\">The <code>mtqp://</code> link "
	    "that <code>msgtrk send</code> printed when the message was "
	    "sent.</p>\n"
	    "<details><summary>Or give the envelope id and the "
	    "secret</summary>\n"
	    "<label for=\"envid\">Envelope id</label>\n"
	    "<input type=\"text\" id=\"envid\" name=\"envid\" "
	    "autocomplete=\"off\" autocapitalize=\"off\" "
	    "spellcheck=\"false\">\n"
	    "<label for=\"secret\">Secret</label>\n"
	    "<input type=\"password\" id=\"secret\" name=\"secret\" "
	    "autocomplete=\"off\">\n"
	    "<label for=\"server\">Tracking server (host or "
	    "host:port)</label>\n"
	    "<input type=\"text\" id=\"server\" name=\"server\" "
	    "autocomplete=\"off\" autocapitalize=\"off\" "
	    "spellcheck=\"false\">\n"
	    "</details>\n"
	    "<button type=\"submit\">Track</button>\n</form>\n");
	return rc;
}

/* Peer text made printable ASCII (str_printable) into out. */
static const char *
printable(char *out, size_t size, const char *s)
{
	if (s == NULL) {
		out[0] = '\0';
		return out;
	}
	return str_printable(out, size, s, strlen(s));
}

/* At most LINE_CHARS of s (printable), "..." when cut. */
static const char *
line_of(char *out, size_t size, const char *s)
{
	char tmp[1024];

	printable(tmp, sizeof(tmp), s);
	if (strlen(tmp) > LINE_CHARS && size > LINE_CHARS)
		snprintf(out, size, "%.*s...", LINE_CHARS - 3, tmp);
	else
		str_copy(out, tmp, size);
	return out;
}

static void
fmt_time(char *out, size_t size, const struct date *d)
{
	struct tm tm;
	time_t t = d->t;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		str_copy(out, "?", size);
}

static void
fmt_delay(char *out, size_t size, long s)
{
	if (s < 0)
		snprintf(out, size, "%ld s earlier (clocks differ)", -s);
	else if (s < 60)
		snprintf(out, size, "%ld s later", s);
	else if (s < 3600)
		snprintf(out, size, "%ld min %ld s later", s / 60, s % 60);
	else if (s < 86400)
		snprintf(
		    out, size, "%ld h %ld min later", s / 3600, s % 3600 / 60);
	else
		snprintf(out, size, "%ld d %ld h later", s / 86400,
		    s % 86400 / 3600);
}

/* The organisation of a host: the name less its first label when it has
 * three or more (mx1.example.com -> example.com). */
static void
organisation(char *out, size_t size, const char *host)
{
	const char *dot = strchr(host, '.');

	if (host[0] != '[' && dot != NULL && strchr(dot + 1, '.') != NULL)
		str_copy(out, dot + 1, size);
	else
		str_copy(out, host, size);
}

/* What an RFC 3463 status says in English (its subject and detail). */
static const char *
status_meaning(const char *st)
{
	static const struct {
		const char *sd;
		const char *text;
	} t[] = {
		{ ".0.0", "" },
		{ ".1.0", "address problem" },
		{ ".1.1", "no such mailbox" },
		{ ".1.2", "no such destination system" },
		{ ".1.3", "bad mailbox address syntax" },
		{ ".1.6", "the mailbox has moved" },
		{ ".1.9", "passed to a server that does not track" },
		{ ".2.0", "mailbox problem" },
		{ ".2.1", "mailbox disabled" },
		{ ".2.2", "mailbox full" },
		{ ".2.3", "message too long for the mailbox" },
		{ ".3.0", "mail system problem" },
		{ ".3.4", "message too big for the system" },
		{ ".4.0", "network or routing problem" },
		{ ".4.1", "no answer from the next server" },
		{ ".4.2", "bad connection" },
		{ ".4.4", "unable to route" },
		{ ".4.7", "delivery time expired" },
		{ ".5.0", "protocol problem" },
		{ ".6.0", "content problem" },
		{ ".7.0", "refused by policy" },
		{ ".7.1", "delivery not authorized" },
	};
	const char *p = st != NULL ? strchr(st, '.') : NULL;
	size_t i;

	if (p == NULL)
		return "";
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(p, t[i].sd) == 0)
			return t[i].text;
	return "";
}

struct end_text {
	const char *cls; /* CSS class suffix */
	const char *label; /* one or two words */
	char text[1400]; /* the sentence (plain, escaped when written) */
};

/* How the trail of r ends, honestly. */
static void
end_of(const struct trail_rcpt *r, struct end_text *e)
{
	const struct trail_hop *last =
	    r->nhops > 0 ? &r->hops[r->nhops - 1] : NULL;
	char rep[300], rem[300], err[600], d[64];
	const char *st = last != NULL ? last->rcpt->status : "";
	const char *m;

	printable(rep, sizeof(rep),
	    last != NULL ? last->part->reporting_mta.value
	                 : "the first server");
	printable(rem, sizeof(rem),
	    last != NULL && last->rcpt->remote_mta.value != NULL
	        ? last->rcpt->remote_mta.value
	        : "the next server");
	printable(err, sizeof(err), r->error);
	m = status_meaning(st);
	switch (r->end) {
	case TRAIL_END_DELIVERED:
		e->cls = "delivered";
		e->label = "Delivered";
		snprintf(e->text, sizeof(e->text),
		    "Delivered: %s put it in the recipient's mailbox.", rep);
		break;
	case TRAIL_END_EXPANDED:
		e->cls = "delivered";
		e->label = "Expanded";
		snprintf(e->text, sizeof(e->text),
		    "Delivered to a list or alias at %s; its members are not "
		    "shown.",
		    rep);
		break;
	case TRAIL_END_RELAYED:
		e->cls = "untracked";
		e->label = "As far as we can track";
		snprintf(e->text, sizeof(e->text),
		    "Transferred to %s, a server that does not track "
		    "(relayed, %s). This is as far as we can track.",
		    rem, st);
		break;
	case TRAIL_END_TRANSFERRED:
		e->cls = "untracked";
		e->label = "As far as we can track";
		snprintf(e->text, sizeof(e->text),
		    "Transferred to %s; its tracking server could not be "
		    "asked. This is as far as we can track.",
		    rem);
		break;
	case TRAIL_END_NOINFO:
		e->cls = "untracked";
		e->label = "As far as we can track";
		snprintf(e->text, sizeof(e->text),
		    "Transferred to %s, which has no tracking information for "
		    "it (it may not track). This is as far as we can track.",
		    rem);
		break;
	case TRAIL_END_ERROR:
		e->cls = "untracked";
		e->label = "As far as we can track";
		snprintf(e->text, sizeof(e->text),
		    "Transferred to %s, whose tracking server did not answer "
		    "(%s). This is as far as we can track.",
		    rem, err);
		break;
	case TRAIL_END_FAILED:
		e->cls = "failed";
		e->label = "Failed";
		snprintf(e->text, sizeof(e->text), "Failed at %s: %s%s%s.", rep,
		    st, m[0] ? " " : "", m);
		break;
	case TRAIL_END_DELAYED:
		e->cls = "delayed";
		e->label = "Delayed";
		if (last != NULL && last->rcpt->has_will_retry) {
			fmt_time(d, sizeof(d), &last->rcpt->will_retry);
			snprintf(e->text, sizeof(e->text),
			    "Delayed at %s: still trying%s%s; it will retry "
			    "until %s.",
			    rep, m[0] ? " after " : "", m, d);
		} else
			snprintf(e->text, sizeof(e->text),
			    "Delayed at %s: still trying.", rep);
		break;
	case TRAIL_END_OPAQUE:
		e->cls = "untracked";
		e->label = "Not disclosed";
		snprintf(e->text, sizeof(e->text),
		    "%s does not disclose what happened next.", rep);
		break;
	default:
		e->cls = "stopped";
		e->label = "Tracking stopped";
		snprintf(e->text, sizeof(e->text), "Tracking stopped (%s)%s%s.",
		    trail_end_name(r->end), err[0] ? ": " : "", err);
		break;
	}
}

/* The lines of one hop's box and list item. */
struct hop_text {
	char host[300], org[300], action[64], when[64], delay[64], to[300],
	    code[16], reply[400];
};

static void
hop_of(const struct trail_rcpt *r, size_t j, struct hop_text *h)
{
	const struct trail_hop *hp = &r->hops[j];
	const struct tstatus_rcpt *tr = hp->rcpt;
	char comment[300];

	printable(h->host, sizeof(h->host), hp->part->reporting_mta.value);
	organisation(h->org, sizeof(h->org), h->host);
	snprintf(h->action, sizeof(h->action), "%s",
	    tstatus_action_name(tr->action));
	fmt_time(h->when, sizeof(h->when), &hp->part->arrival);
	if (j == 0)
		str_copy(h->delay, "first hop", sizeof(h->delay));
	else
		fmt_delay(h->delay, sizeof(h->delay),
		    (long)(hp->part->arrival.t -
		        r->hops[j - 1].part->arrival.t));
	printable(h->to, sizeof(h->to), tr->remote_mta.value);
	printable(comment, sizeof(comment), tr->status_comment);
	printable(h->code, sizeof(h->code), tr->status);
	snprintf(h->reply, sizeof(h->reply), "%s%s%s%s%s", tr->status,
	    status_meaning(tr->status)[0] ? " " : "",
	    status_meaning(tr->status), comment[0] ? " " : "", comment);
}

/* Writes text wrapped at spaces into lines of at most LINE_CHARS: up to
 * max SVG <text> lines starting at y. */
static int
svg_wrap(struct buf *b, const char *text, int x, int y, int max)
{
	char line[LINE_CHARS + 8];
	const char *p = text;
	int rc = 0, n = 0;

	while (*p != '\0' && n < max && rc == 0) {
		size_t len = strlen(p), cut = len;

		if (len > LINE_CHARS) {
			cut = LINE_CHARS;
			while (cut > 0 && p[cut] != ' ')
				cut--;
			if (cut == 0)
				cut = LINE_CHARS;
		}
		if (n == max - 1 && len > cut)
			snprintf(line, sizeof(line), "%.*s...",
			    (int)(cut > LINE_CHARS - 3 ? LINE_CHARS - 3 : cut),
			    p);
		else
			snprintf(line, sizeof(line), "%.*s", (int)cut, p);
		rc |= buf_addf(
		    b, "<text x=\"%d\" y=\"%d\">", x, y + n * END_LINE);
		rc |= page_esc(b, line);
		rc |= buf_adds(b, "</text>\n");
		p += cut;
		while (*p == ' ')
			p++;
		n++;
	}
	return rc;
}

static int
svg_text(struct buf *b, const char *cls, int x, int y, const char *s)
{
	char line[LINE_CHARS + 8];
	int rc = 0;

	rc |= buf_addf(b, "<text x=\"%d\" y=\"%d\"%s%s%s>", x, y,
	    cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
	rc |= page_esc(b, line_of(line, sizeof(line), s));
	rc |= buf_adds(b, "</text>\n");
	return rc;
}

/* One recipient: heading, the picture, the text. */
static int
page_rcpt(struct buf *b, const struct trail_rcpt *r, size_t i)
{
	struct end_text e;
	struct hop_text h;
	char addr[600], tmp[2400];
	size_t j;
	int rc = 0, y, ly, height;

	end_of(r, &e);
	printable(addr, sizeof(addr), r->orig_value);
	height = 10 + (int)r->nhops * (BOX_H + GAP) + 4 * END_LINE + 20;
	rc |= buf_addf(b,
	    "<section class=\"rcpt\" aria-labelledby=\"r%zu-h\">\n"
	    "<h2 id=\"r%zu-h\">",
	    i, i);
	rc |= page_esc(b, addr);
	rc |= buf_addf(b, " <span class=\"state state-%s\">", e.cls);
	rc |= page_esc(b, e.label);
	rc |= buf_adds(b, "</span></h2>\n<p class=\"end\">");
	rc |= page_esc(b, e.text);
	rc |= buf_adds(b, "</p>\n<figure>\n");
	/* The picture, its accessible name and description first. */
	rc |= buf_addf(b,
	    "<svg class=\"path\" role=\"img\" viewBox=\"0 0 %d %d\" "
	    "width=\"%d\" height=\"%d\" aria-labelledby=\"r%zu-t r%zu-d\" "
	    "xmlns=\"http://www.w3.org/2000/svg\">\n<title id=\"r%zu-t\">",
	    SVG_W, height, SVG_W, height, i, i, i);
	snprintf(tmp, sizeof(tmp), "Path of the message to %s: %zu hop%s, %s",
	    addr, r->nhops, r->nhops == 1 ? "" : "s", e.label);
	rc |= page_esc(b, tmp);
	rc |= buf_addf(b, "</title>\n<desc id=\"r%zu-d\">", i);
	for (j = 0; j < r->nhops; j++) {
		hop_of(r, j, &h);
		snprintf(tmp, sizeof(tmp),
		    "Hop %zu, %s: %s%s%s, status %s, %s. ", j + 1, h.host,
		    h.action, h.to[0] ? " to " : "", h.to, h.reply, h.when);
		rc |= page_esc(b, tmp);
	}
	rc |= page_esc(b, e.text);
	rc |= buf_addf(b,
	    "</desc>\n<defs><marker id=\"r%zu-a\" viewBox=\"0 0 10 10\" "
	    "refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" "
	    "orient=\"auto\"><path d=\"M0,0L10,5L0,10z\"/></marker></defs>\n",
	    i);
	y = 10;
	for (j = 0; j < r->nhops; j++) {
		hop_of(r, j, &h);
		rc |= buf_addf(b,
		    "<g class=\"hop hop-%s\" transform=\"translate(%d,%d)\">\n"
		    "<rect width=\"%d\" height=\"%d\" rx=\"8\"/>\n",
		    h.action, BOX_X, y, BOX_W, BOX_H);
		snprintf(tmp, sizeof(tmp), "%zu. %s", j + 1, h.host);
		rc |= svg_text(b, "h", 12, 22, tmp);
		ly = 40;
		if (strcmp(h.org, h.host) != 0) {
			snprintf(tmp, sizeof(tmp), "organisation %s", h.org);
			rc |= svg_text(b, "m", 12, ly, tmp);
			ly += 16;
		}
		snprintf(tmp, sizeof(tmp), "%s%s%s (%s)", h.action,
		    h.to[0] ? " to " : "", h.to, h.code);
		rc |= svg_text(b, NULL, 12, ly, tmp);
		rc |= svg_text(b, "m", 12, ly + 16, h.when);
		rc |= svg_text(b, "m", 12, ly + 32, h.delay);
		rc |= buf_adds(b, "</g>\n");
		rc |= buf_addf(b,
		    "<line class=\"arrow\" x1=\"%d\" y1=\"%d\" x2=\"%d\" "
		    "y2=\"%d\" marker-end=\"url(#r%zu-a)\"/>\n",
		    BOX_X + BOX_W / 2, y + BOX_H + 2, BOX_X + BOX_W / 2,
		    y + BOX_H + GAP - 4, i);
		y += BOX_H + GAP;
	}
	rc |= buf_addf(b,
	    "<g class=\"end end-%s\" transform=\"translate(%d,%d)\">\n"
	    "<rect width=\"%d\" height=\"%d\" rx=\"16\"/>\n",
	    e.cls, BOX_X, y, BOX_W, 4 * END_LINE + 8);
	rc |= svg_text(b, "h", 12, 22, e.label);
	rc |= svg_wrap(b, e.text, 12, 22 + END_LINE, 3);
	rc |= buf_adds(b, "</g>\n</svg>\n</figure>\n<ol class=\"hops\">\n");
	/* The same in text. */
	for (j = 0; j < r->nhops; j++) {
		hop_of(r, j, &h);
		rc |= buf_adds(b, "<li><b>");
		rc |= page_esc(b, h.host);
		rc |= buf_adds(b, "</b>");
		if (strcmp(h.org, h.host) != 0) {
			rc |= buf_adds(b, " (");
			rc |= page_esc(b, h.org);
			rc |= buf_adds(b, ")");
		}
		snprintf(tmp, sizeof(tmp), ": %s%s%s, status %s, at %s (%s)%s",
		    h.action, h.to[0] ? " to " : "", h.to, h.reply, h.when,
		    h.delay, r->hops[j].answer->tls ? ", told over TLS" : "");
		rc |= page_esc(b, tmp);
		rc |= buf_adds(b, "</li>\n");
	}
	rc |= buf_adds(b, "<li class=\"end\">");
	rc |= page_esc(b, e.text);
	rc |= buf_adds(b, "</li>\n</ol>\n</section>\n");
	return rc;
}

int
page_trail(struct buf *b, const struct trail_result *res, const char *envid,
    const char *server)
{
	char tmp[600];
	size_t i;
	int rc = 0;

	rc |= buf_adds(b, "<h1>Message ");
	rc |= page_esc(b, printable(tmp, sizeof(tmp), envid));
	rc |= buf_adds(b, "</h1>\n<p class=\"muted\">Followed from ");
	rc |= page_esc(b, printable(tmp, sizeof(tmp), server));
	rc |= buf_addf(b, "; %zu tracking server%s answered.</p>\n",
	    res->nanswers, res->nanswers == 1 ? "" : "s");
	if (res->nrcpt == 0)
		rc |= buf_adds(b,
		    "<p>The server knows no recipient of this "
		    "message.</p>\n");
	for (i = 0; i < res->nrcpt; i++)
		rc |= page_rcpt(b, &res->rcpts[i], i);
	if (res->error != NULL && res->error[0] != '\0') {
		rc |= buf_adds(b, "<p class=\"muted\">");
		rc |= page_esc(b, printable(tmp, sizeof(tmp), res->error));
		rc |= buf_adds(b, "</p>\n");
	}
	return rc;
}
