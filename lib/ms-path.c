#include "ms-path.h"

#include <stdio.h>
#include <string.h>

#define MS_ADDRESS_MAX 255
#define MS_FOLDER_MAX  200

static bool
safe_part(const char *part, size_t len)
{
	size_t i;

	if (len == 0 || part[0] == '.')
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)part[i];

		if (c < 0x20 || c == 0x7f || c == '/' || c == '@')
			return false;
		if (c == '.' && i + 1 < len && part[i + 1] == '.')
			return false;
	}
	return true;
}

bool
ms_path_safe_address(const char *addr, size_t len)
{
	const char *at;

	if (len == 0 || len > MS_ADDRESS_MAX || memchr(addr, '\0', len) != NULL)
		return false;
	if ((at = memchr(addr, '@', len)) == NULL)
		return false;
	return safe_part(addr, (size_t)(at - addr)) &&
	       safe_part(at + 1, len - (size_t)(at - addr) - 1);
}

bool
ms_path_safe_folder(const char *name)
{
	size_t len = strlen(name), i;

	if (len == 0 || len > MS_FOLDER_MAX || name[0] == '.' || name[len - 1] == '.')
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		/* 8-bit names would need IMAP's modified UTF-7: refuse them. */
		if (c < 0x20 || c >= 0x7f || c == '/' || c == '\\')
			return false;
		if (c == '.' && name[i + 1] == '.')
			return false;
	}
	return true;
}

static int
path_error(char *err, size_t errlen, const char *location, const char *problem)
{
	snprintf(err, errlen, "mail_location \"%s\": %s", location, problem);
	return -1;
}

/* The value of the variable at *p (just after '%'); advances *p. */
static const char *
expand_var(const char **p, const struct ms_path_vars *vars)
{
	static const struct {
		const char *name;
		char letter;
	} longnames[] = {{"user", 'u'}, {"username", 'n'}, {"domain", 'd'}, {"home", 'h'}};
	const char *s = *p;
	char letter = *s;
	size_t i, n;

	if (*s == '{') {
		letter = '\0';
		for (i = 0; i < sizeof(longnames) / sizeof(longnames[0]); i++) {
			n = strlen(longnames[i].name);
			if (strncmp(s + 1, longnames[i].name, n) == 0 && s[1 + n] == '}') {
				letter = longnames[i].letter;
				s += n + 1;
				break;
			}
		}
	}
	*p = s + 1;
	switch (letter) {
	case 'u':
		return vars->user;
	case 'n':
		return vars->local;
	case 'd':
		return vars->domain;
	case 'h':
		return vars->home;
	case '%':
		return "%";
	}
	return NULL;
}

/* No "." or ".." component anywhere: the result stays where the template
 * and the userdb's home put it. */
static bool
components_ok(const char *path)
{
	const char *p = path, *end;
	size_t len;

	while (*p != '\0') {
		while (*p == '/')
			p++;
		end = strchr(p, '/');
		len = end == NULL ? strlen(p) : (size_t)(end - p);
		if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += len;
	}
	return true;
}

int
ms_path_expand(const char *location, const struct ms_path_vars *vars, char *buf, size_t bufsize,
               char *err, size_t errlen)
{
	const char *p = location, *value;
	size_t used = 0, len;

	if (strncmp(p, "maildir:", 8) == 0)
		p += 8;
	if (bufsize == 0)
		return path_error(err, errlen, location, "no room");
	if (p[0] == '~' && (p[1] == '/' || p[1] == '\0' || p[1] == ':')) {
		if (vars->home == NULL || vars->home[0] == '\0')
			return path_error(err, errlen, location, "~ used but the user has no home");
		len = strlen(vars->home);
		if (len >= bufsize)
			return path_error(err, errlen, location, "path too long");
		memcpy(buf, vars->home, len);
		used = len;
		p++;
	}
	while (*p != '\0' && *p != ':') {
		if (*p != '%') {
			value = p++;
			len = 1;
		} else {
			p++;
			if ((value = expand_var(&p, vars)) == NULL)
				return path_error(err, errlen, location, "unknown % variable");
			if (value[0] == '\0')
				return path_error(err, errlen, location, "a % variable is empty");
			/* only the userdb's home may add directories */
			if (value != vars->home && strchr(value, '/') != NULL)
				return path_error(err, errlen, location, "'/' in a % variable");
			len = strlen(value);
		}
		if (len >= bufsize - used)
			return path_error(err, errlen, location, "path too long");
		memcpy(buf + used, value, len);
		used += len;
	}
	/* "/var/vmail/%d/%n/" is the same directory: no empty last component */
	while (used > 1 && buf[used - 1] == '/')
		used--;
	buf[used] = '\0';
	if (buf[0] != '/')
		return path_error(err, errlen, location, "not an absolute path");
	if (!components_ok(buf))
		return path_error(err, errlen, location, "\".\" or \"..\" in the path");
	return 0;
}
