#include "ms-filter.h"

#include <stdio.h>

/* The verdict as mail readers and Pigeonhole's spamtest see it. Only
 * formatting: classification lives elsewhere in ms-filter. */
int
ms_verdict_headers(const struct ms_verdict *verdict, char *buf, size_t bufsize)
{
	double score = verdict->score;
	bool known = verdict->status == MS_VERDICT_OK;
	char reason[sizeof(verdict->reason)];
	size_t i;
	int len;

	if (!(score >= 0.0)) /* also NaN */
		score = 0.0;
	else if (score > 1.0)
		score = 1.0;
	/* the reason may come from an error message: one header line only */
	for (i = 0; i + 1 < sizeof(reason) && verdict->reason[i] != '\0'; i++) {
		unsigned char c = (unsigned char)verdict->reason[i];

		reason[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	reason[i] = '\0';
	len = snprintf(buf, bufsize,
	               "X-Spam-Flag: %s\nX-Spam-Score: %.2f\n"
	               "X-Spam-Status: %s, score=%.2f tokens=%u%s%s\n",
	               known && verdict->spam ? "YES" : "NO", score,
	               !known          ? "Unknown"
	               : verdict->spam ? "Yes"
	                               : "No",
	               score, verdict->ntokens, reason[0] != '\0' ? " " : "", reason);
	if (len < 0 || (size_t)len >= bufsize)
		return -1;
	return len;
}
