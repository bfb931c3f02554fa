#include "lib.h"

#include "ms-dovecot.h"

void
ms_dovecot_init(void)
{
	if (!lib_is_initialized())
		lib_init();
}
