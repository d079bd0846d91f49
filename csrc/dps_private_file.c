/*
 * Atomic, owner-only file writes (see dps_csr.h): the operational key and
 * the assignment cache must never be seen half-written or by others. And
 * the one reader of such small files.
 */
#define _POSIX_C_SOURCE 200809L
#include "dps_csr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dps_crypto.h"
#include "dps_error.h"

/* Directory part of path ("." when there is none); malloc'd. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    char *dir;

    if (slash && n == 0)
        n = 1; /* "/file" lives in "/" */
    dir = malloc(slash ? n + 1 : 2);
    if (!dir)
        return NULL;
    if (slash) {
        memcpy(dir, path, n);
        dir[n] = '\0';
    } else {
        strcpy(dir, ".");
    }
    return dir;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int dps_write_private_file(const char *path, const void *data, size_t len,
                           const char *what, char *err, size_t errlen)
{
    char *tmp, *dir;
    size_t n;
    int fd, saved, dfd;

    if (!path || !*path || (!data && len)) {
        dps_set_error(err, errlen, "no %s path given", what);
        return -1;
    }
    n = strlen(path) + 32;
    tmp = malloc(n);
    dir = dir_of(path);
    if (!tmp || !dir) {
        free(tmp);
        free(dir);
        dps_set_error(err, errlen, "out of memory");
        return -1;
    }
    /* The pid keeps two writers of one path apart; O_EXCL refuses a
     * planted file or symlink. */
    snprintf(tmp, n, "%s.tmp%ld", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno == EEXIST) {
        unlink(tmp); /* left by an earlier run of this pid, cut short */
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                  0600);
    }
    if (fd < 0) {
        dps_set_error(err, errlen, "cannot create %s file %s: %s", what, tmp,
                      strerror(errno));
        goto fail;
    }
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        saved = errno;
        close(fd);
        unlink(tmp);
        dps_set_error(err, errlen, "cannot write %s file %s: %s", what, tmp,
                      strerror(saved));
        goto fail;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        saved = errno;
        unlink(tmp);
        dps_set_error(err, errlen, "cannot write %s file %s: %s", what, path,
                      strerror(saved));
        goto fail;
    }
    /* The rename itself reaches the disk with the directory. */
    dfd = open(dir, O_RDONLY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(tmp);
    free(dir);
    return 0;
fail:
    free(tmp);
    free(dir);
    return -1;
}

char *dps_read_small_file(const char *path, size_t max, size_t *len)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC), saved;

    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) != 0) {
        saved = errno;
        close(fd);
        errno = saved;
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || (uintmax_t)st.st_size > max) {
        close(fd);
        errno = EINVAL;
        return NULL;
    }
    buf = malloc((size_t)st.st_size + 1);
    saved = buf ? 0 : ENOMEM;
    while (buf && got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            saved = r < 0 ? errno : EIO; /* EIO: the file shrank */
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (!buf || got != (size_t)st.st_size) {
        if (buf)
            dps_wipe(buf, got);
        free(buf);
        errno = saved;
        return NULL;
    }
    buf[got] = '\0';
    *len = got;
    return buf;
}
