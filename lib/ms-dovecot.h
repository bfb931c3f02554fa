#ifndef MS_DOVECOT_H
#define MS_DOVECOT_H

/* libdovecot's process-wide state (data stack, memory pools, failure
 * handlers): lib_init() once per process. Binaries call this at startup;
 * the parser calls it too, so it is idempotent. A process that already runs
 * inside Dovecot (the plugin) has it initialized and this does nothing. */
void ms_dovecot_init(void);

#endif
