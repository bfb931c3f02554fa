#ifndef MS_HTML_H
#define MS_HTML_H

#include <stddef.h>

/* What an HTML part's markup says beyond its text: the links (which the
 * text rendering drops) and features spam uses more than people do. A
 * forgiving single pass over the source, linear in its size; it never
 * allocates. */

enum ms_html_feature {
	MS_HTML_IMG = 0x01,
	MS_HTML_FORM = 0x02,
	MS_HTML_SCRIPT = 0x04,
	MS_HTML_IFRAME = 0x08,
	MS_HTML_HIDDEN = 0x10, /* style hides text: display:none, font-size:0... */
	MS_HTML_OBJECT = 0x20, /* object, embed, applet */
};

/* Called for each href, src, action or background value, trimmed. */
typedef void ms_html_link_cb(const unsigned char *url, size_t len, void *context);

/* Returns the features found (enum ms_html_feature bits). */
unsigned int ms_html_scan(const unsigned char *html, size_t size, ms_html_link_cb *cb,
                          void *context);

/* The name of one feature bit, for metatokens. */
const char *ms_html_feature_name(unsigned int feature);

#endif
