#include "ms-sendmail.h"
#include "ms-util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#define MS_SENDMAIL_MAX_RCPTS 64

static void
exec_sendmail(const char *path, const char *from, const char *const *rcpts, int input_fd)
{
	const char *argv[MS_SENDMAIL_MAX_RCPTS + 6];
	unsigned int i = 0, j;

	argv[i++] = path;
	argv[i++] = "-i";
	argv[i++] = "-f";
	argv[i++] = *from == '\0' ? "<>" : from;
	argv[i++] = "--";
	for (j = 0; rcpts[j] != NULL && j < MS_SENDMAIL_MAX_RCPTS; j++)
		argv[i++] = rcpts[j];
	argv[i] = NULL;
	if (dup2(input_fd, STDIN_FILENO) < 0)
		_exit(EX_OSERR);
	close(input_fd);
	execv(path, (char *const *)argv);
	_exit(errno == ENOENT ? EX_UNAVAILABLE : EX_OSERR);
}

static int
exit_status(int status, const char *path, char *err, size_t errlen)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 1;
	if (WIFEXITED(status)) {
		snprintf(err, errlen, "%s exited with %d", path, WEXITSTATUS(status));
		/* sysexits: only the temporary ones are worth a retry */
		return WEXITSTATUS(status) == EX_TEMPFAIL || WEXITSTATUS(status) == EX_OSERR ||
		                       WEXITSTATUS(status) == EX_IOERR
		               ? -1
		               : 0;
	}
	snprintf(err, errlen, "%s killed by signal %d", path, WTERMSIG(status));
	return -1;
}

int
ms_sendmail(const char *path, const char *from, const char *const *rcpts, const void *data,
            size_t size, char *err, size_t errlen)
{
	void (*old_pipe)(int);
	int fds[2], status, write_ret;
	pid_t pid;

	if (rcpts[0] == NULL) {
		snprintf(err, errlen, "no recipients");
		return 0;
	}
	if (pipe(fds) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		close(fds[1]);
		exec_sendmail(path, from, rcpts, fds[0]);
	}
	close(fds[0]);
	old_pipe = signal(SIGPIPE, SIG_IGN);
	write_ret = ms_write_all(fds[1], data, size);
	close(fds[1]);
	signal(SIGPIPE, old_pipe);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			snprintf(err, errlen, "waitpid: %s", strerror(errno));
			return -1;
		}
	}
	if (write_ret < 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		snprintf(err, errlen, "%s did not read the whole message", path);
		return -1;
	}
	return exit_status(status, path, err, errlen);
}
