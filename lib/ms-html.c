#include "ms-html.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

struct tag_name {
	const char *name;
	unsigned int feature;
};

static const struct tag_name feature_tags[] = {
        {"img", MS_HTML_IMG},       {"form", MS_HTML_FORM},     {"script", MS_HTML_SCRIPT},
        {"iframe", MS_HTML_IFRAME}, {"object", MS_HTML_OBJECT}, {"embed", MS_HTML_OBJECT},
        {"applet", MS_HTML_OBJECT}, {"frame", MS_HTML_IFRAME},
};

static const char *const link_attrs[] = {"href", "src", "action", "background"};

/* Inline styles that make text invisible; matched with spaces removed. */
static const char *const hidden_styles[] = {
        "display:none", "visibility:hidden", "font-size:0px", "font-size:0;", "font-size:1px",
};

static bool
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f';
}

static bool
name_eq(const unsigned char *p, size_t len, const char *name)
{
	return strlen(name) == len && strncasecmp((const char *)p, name, len) == 0;
}

static unsigned int
tag_feature(const unsigned char *name, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(feature_tags) / sizeof(feature_tags[0]); i++) {
		if (name_eq(name, len, feature_tags[i].name))
			return feature_tags[i].feature;
	}
	return 0;
}

static bool
style_hides(const unsigned char *value, size_t len)
{
	char compact[128];
	size_t i, n = 0;

	for (i = 0; i < len && n + 2 < sizeof(compact); i++) {
		if (!is_space(value[i]))
			compact[n++] = (char)(value[i] | 0x20);
	}
	compact[n++] = ';';
	compact[n] = '\0';
	for (i = 0; i < sizeof(hidden_styles) / sizeof(hidden_styles[0]); i++) {
		if (strstr(compact, hidden_styles[i]) != NULL)
			return true;
	}
	return false;
}

static void
attribute(const unsigned char *name, size_t nlen, const unsigned char *value, size_t vlen,
          unsigned int *features, ms_html_link_cb *cb, void *context)
{
	size_t i;

	while (vlen > 0 && is_space(*value)) {
		value++;
		vlen--;
	}
	while (vlen > 0 && is_space(value[vlen - 1]))
		vlen--;
	if (name_eq(name, nlen, "style")) {
		if (style_hides(value, vlen))
			*features |= MS_HTML_HIDDEN;
		return;
	}
	if (vlen == 0)
		return;
	for (i = 0; i < sizeof(link_attrs) / sizeof(link_attrs[0]); i++) {
		if (name_eq(name, nlen, link_attrs[i])) {
			cb(value, vlen, context);
			return;
		}
	}
}

/* Parse the attributes of a tag starting at p; returns the position after
 * the closing '>' (or the end). */
static size_t
attributes(const unsigned char *p, size_t size, unsigned int *features, ms_html_link_cb *cb,
           void *context)
{
	size_t i = 0, name, nlen, value, vlen;
	unsigned char quote;

	while (i < size && p[i] != '>') {
		if (is_space(p[i]) || p[i] == '/') {
			i++;
			continue;
		}
		name = i;
		while (i < size && !is_space(p[i]) && p[i] != '=' && p[i] != '>' && p[i] != '/')
			i++;
		nlen = i - name;
		while (i < size && is_space(p[i]))
			i++;
		if (i >= size || p[i] != '=') {
			if (nlen == 0)
				i++;
			continue;
		}
		i++;
		while (i < size && is_space(p[i]))
			i++;
		if (i < size && (p[i] == '"' || p[i] == '\'')) {
			quote = p[i++];
			value = i;
			while (i < size && p[i] != quote)
				i++;
			vlen = i - value;
			if (i < size)
				i++;
		} else {
			value = i;
			while (i < size && !is_space(p[i]) && p[i] != '>')
				i++;
			vlen = i - value;
		}
		attribute(p + name, nlen, p + value, vlen, features, cb, context);
	}
	return i < size ? i + 1 : size;
}

static size_t
skip_comment(const unsigned char *p, size_t size)
{
	size_t i;

	for (i = 0; i + 2 < size; i++) {
		if (p[i] == '-' && p[i + 1] == '-' && p[i + 2] == '>')
			return i + 3;
	}
	return size;
}

unsigned int
ms_html_scan(const unsigned char *html, size_t size, ms_html_link_cb *cb, void *context)
{
	unsigned int features = 0;
	size_t i = 0, name;
	const unsigned char *lt;

	while (i < size && (lt = memchr(html + i, '<', size - i)) != NULL) {
		i = (size_t)(lt - html) + 1;
		if (size - i >= 3 && memcmp(html + i, "!--", 3) == 0) {
			i += 3 + skip_comment(html + i + 3, size - i - 3);
			continue;
		}
		name = i;
		while (i < size && ((html[i] | 0x20) >= 'a' && (html[i] | 0x20) <= 'z'))
			i++;
		if (i == name)
			continue;
		features |= tag_feature(html + name, i - name);
		i += attributes(html + i, size - i, &features, cb, context);
	}
	return features;
}

const char *
ms_html_feature_name(unsigned int feature)
{
	switch (feature) {
	case MS_HTML_IMG:
		return "img";
	case MS_HTML_FORM:
		return "form";
	case MS_HTML_SCRIPT:
		return "script";
	case MS_HTML_IFRAME:
		return "iframe";
	case MS_HTML_HIDDEN:
		return "hidden";
	case MS_HTML_OBJECT:
		return "object";
	}
	return "other";
}
