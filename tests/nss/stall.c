/*
 * A name service that hangs, as LDAP or SSSD does when its server is down: loaded by
 * nss_wrapper (NSS_WRAPPER_MODULE_SO_PATH, NSS_WRAPPER_MODULE_FN_PREFIX=stall) behind the
 * test's passwd file, so it is asked only about names that file does not hold.
 *
 * A lookup of "slowpoke" creates $STALL_NSS_DIR/entered, then waits while
 * $STALL_NSS_DIR/hold exists (at most 60 s, so a failed test leaves no thread behind for
 * long), then answers "no such user". Every other question gets "no such user" at once.
 */
#include <errno.h>
#include <grp.h>
#include <nss.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static void stall(const char *name)
{
	const char *dir = getenv("STALL_NSS_DIR");
	char path[4096];
	if (dir == NULL || strcmp(name, "slowpoke") != 0)
		return;
	snprintf(path, sizeof(path), "%s/entered", dir);
	FILE *entered = fopen(path, "w");
	if (entered != NULL)
		fclose(entered);
	snprintf(path, sizeof(path), "%s/hold", dir);
	struct timespec tick = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };
	for (int i = 0; i < 6000 && access(path, F_OK) == 0; i++)
		nanosleep(&tick, NULL);
}

static enum nss_status not_found(int *errnop)
{
	*errnop = ENOENT;
	return NSS_STATUS_NOTFOUND;
}

enum nss_status _nss_stall_getpwnam_r(const char *name, struct passwd *result, char *buffer,
				      size_t buflen, int *errnop)
{
	(void)result, (void)buffer, (void)buflen;
	stall(name);
	return not_found(errnop);
}

enum nss_status _nss_stall_getpwuid_r(uid_t uid, struct passwd *result, char *buffer,
				      size_t buflen, int *errnop)
{
	(void)uid, (void)result, (void)buffer, (void)buflen;
	return not_found(errnop);
}

enum nss_status _nss_stall_setpwent(void)
{
	return NSS_STATUS_SUCCESS;
}

enum nss_status _nss_stall_getpwent_r(struct passwd *result, char *buffer, size_t buflen,
				      int *errnop)
{
	(void)result, (void)buffer, (void)buflen;
	return not_found(errnop);
}

enum nss_status _nss_stall_endpwent(void)
{
	return NSS_STATUS_SUCCESS;
}

enum nss_status _nss_stall_initgroups_dyn(const char *user, gid_t group, long int *start,
					  long int *size, gid_t **groups, long int limit,
					  int *errnop)
{
	(void)user, (void)group, (void)start, (void)size, (void)groups, (void)limit;
	return not_found(errnop);
}

enum nss_status _nss_stall_getgrnam_r(const char *name, struct group *result, char *buffer,
				      size_t buflen, int *errnop)
{
	(void)name, (void)result, (void)buffer, (void)buflen;
	return not_found(errnop);
}

enum nss_status _nss_stall_getgrgid_r(gid_t gid, struct group *result, char *buffer,
				      size_t buflen, int *errnop)
{
	(void)gid, (void)result, (void)buffer, (void)buflen;
	return not_found(errnop);
}

enum nss_status _nss_stall_setgrent(void)
{
	return NSS_STATUS_SUCCESS;
}

enum nss_status _nss_stall_getgrent_r(struct group *result, char *buffer, size_t buflen,
				      int *errnop)
{
	(void)result, (void)buffer, (void)buflen;
	return not_found(errnop);
}

enum nss_status _nss_stall_endgrent(void)
{
	return NSS_STATUS_SUCCESS;
}
