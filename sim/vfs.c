/* sim/vfs.c: the trace writer's VFS, the default one with WAL appends
 * gathered into one write per commit (sim/vfs.h says what is guaranteed).
 *
 * SQLite writes a WAL frame as two writes, its 24-byte header and then
 * the page (wal.c, walWriteOneFrame), each frame right after the last: a
 * TLS handshake's run is about 22 frames, 44 pwrite calls, each costing
 * more in the kernel than copying its bytes. Here a write that continues
 * the last one is copied to a buffer instead; the buffer is written when
 * the page of a commit frame (a header whose bytes 4..7, the database
 * size after the commit, are not zero; fileformat2.html "WAL file
 * format") has joined it, before SQLite returns from writing that frame.
 * Anything unusual writes the buffer out and goes straight through: a
 * write that does not continue the last one, a piece of a frame (only a
 * WAL synced per commit, synchronous=FULL, on a device without
 * power-safe overwrite, splits frames: this file then stops gathering),
 * and every other call on the WAL. */
#include "sim/vfs.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#define WAL_HDR 32
/* The unix VFS writes at most 128 KiB - 1 bytes per call (os_unix.c,
 * seekAndWriteFd: nBuf &= 0x1ffff): the buffer goes out in pieces. */
#define WRITE_MAX ((size_t)120 << 10)
#define FRAME_HDR 24

typedef struct vfile {
	sqlite3_file base;
	sqlite3_file *real; /* the default VFS's file, after this struct */
	int wal;            /* a WAL file: writes may be gathered */
	int through;        /* gathering switched off for this file */
	int commit;         /* the buffer ends with a commit frame's header */
	uint8_t *buf;       /* SIM_VFS_BUF_BYTES, allocated on first use */
	size_t len;         /* bytes gathered */
	sqlite3_int64 off;  /* file offset of buf[0] */
	sqlite3_int64 end;  /* end of the last write; -1: unknown */
} vfile;

#define REAL_AT ((sizeof(vfile) + 7) & ~(size_t)7)

static sqlite3_vfs *root; /* the default VFS */
static sqlite3_vfs vfs;
static int registered;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static sqlite3_file *real(sqlite3_file *f)
{
	return ((vfile *)f)->real;
}

/* flush writes the gathered bytes out. On failure they are dropped (the
 * transaction they belong to fails with the error) and the next write
 * goes straight through. */
static int flush(vfile *f)
{
	if (f->len == 0) {
		return SQLITE_OK;
	}
	size_t len = f->len;
	f->len = 0;
	f->commit = 0;
	int rc = SQLITE_OK;
	for (size_t at = 0; at < len && rc == SQLITE_OK; at += WRITE_MAX) {
		size_t n = len - at < WRITE_MAX ? len - at : WRITE_MAX;
		rc = f->real->pMethods->xWrite(f->real, f->buf + at, (int)n,
					       f->off + (sqlite3_int64)at);
	}
	if (rc != SQLITE_OK) {
		f->end = -1;
	}
	return rc;
}

static int v_close(sqlite3_file *p)
{
	vfile *f = (vfile *)p;
	int rc = flush(f);
	int rc2 = f->real->pMethods->xClose(f->real);
	free(f->buf);
	f->buf = NULL;
	return rc != SQLITE_OK ? rc : rc2;
}

static int v_read(sqlite3_file *p, void *b, int n, sqlite3_int64 o)
{
	int rc = flush((vfile *)p);
	return rc != SQLITE_OK ? rc
			       : real(p)->pMethods->xRead(real(p), b, n, o);
}

/* whole says whether a write of |n| bytes is a frame header or a page. */
static int whole(int n)
{
	return n == FRAME_HDR || (n >= 512 && n <= 65536 && (n & (n - 1)) == 0);
}

/* commit_header says whether a write is the header of a commit frame. */
static int commit_header(const void *b, int n)
{
	const uint8_t *h = b;
	return n == FRAME_HDR && (h[4] | h[5] | h[6] | h[7]) != 0;
}

static int v_write(sqlite3_file *p, const void *b, int n, sqlite3_int64 o)
{
	vfile *f = (vfile *)p;
	if (!f->wal) {
		return f->real->pMethods->xWrite(f->real, b, n, o);
	}
	int rc;
	int joins =
	    !f->through && n > 0 && whole(n) &&
	    (size_t)n <= SIM_VFS_BUF_BYTES - f->len &&
	    (f->len > 0 ? o == f->off + (sqlite3_int64)f->len : o == f->end);
	if (joins && f->buf == NULL &&
	    (f->buf = malloc(SIM_VFS_BUF_BYTES)) == NULL) {
		joins = 0;
	}
	if (!joins) {
		if (n > 0 && !whole(n) && !(o == 0 && n == WAL_HDR)) {
			f->through = 1;
		}
		if ((rc = flush(f)) != SQLITE_OK) {
			return rc;
		}
		rc = f->real->pMethods->xWrite(f->real, b, n, o);
		f->end = rc == SQLITE_OK ? o + n : -1;
		/* A commit frame's page gathered after its header went
		 * through is still written at once. */
		f->commit = rc == SQLITE_OK && commit_header(b, n);
		return rc;
	}
	if (f->len == 0) {
		f->off = o;
	}
	memcpy(f->buf + f->len, b, (size_t)n);
	f->len += (size_t)n;
	f->end = o + n;
	if (f->commit && n != FRAME_HDR) {
		return flush(f); /* the commit frame is complete */
	}
	f->commit = commit_header(b, n);
	return SQLITE_OK;
}

static int v_truncate(sqlite3_file *p, sqlite3_int64 size)
{
	int rc = flush((vfile *)p);
	return rc != SQLITE_OK ? rc
			       : real(p)->pMethods->xTruncate(real(p), size);
}

static int v_sync(sqlite3_file *p, int flags)
{
	int rc = flush((vfile *)p);
	return rc != SQLITE_OK ? rc : real(p)->pMethods->xSync(real(p), flags);
}

static int v_file_size(sqlite3_file *p, sqlite3_int64 *size)
{
	int rc = flush((vfile *)p);
	return rc != SQLITE_OK ? rc
			       : real(p)->pMethods->xFileSize(real(p), size);
}

static int v_lock(sqlite3_file *p, int lock)
{
	return real(p)->pMethods->xLock(real(p), lock);
}

static int v_unlock(sqlite3_file *p, int lock)
{
	return real(p)->pMethods->xUnlock(real(p), lock);
}

static int v_check_reserved(sqlite3_file *p, int *out)
{
	return real(p)->pMethods->xCheckReservedLock(real(p), out);
}

static int v_file_control(sqlite3_file *p, int op, void *arg)
{
	int rc = flush((vfile *)p);
	return rc != SQLITE_OK
		   ? rc
		   : real(p)->pMethods->xFileControl(real(p), op, arg);
}

static int v_sector_size(sqlite3_file *p)
{
	return real(p)->pMethods->xSectorSize(real(p));
}

static int v_device(sqlite3_file *p)
{
	return real(p)->pMethods->xDeviceCharacteristics(real(p));
}

static int v_shm_map(sqlite3_file *p, int i, int size, int extend,
		     void volatile **out)
{
	const sqlite3_io_methods *m = real(p)->pMethods;
	return m->iVersion >= 2 ? m->xShmMap(real(p), i, size, extend, out)
				: SQLITE_IOERR_SHMMAP;
}

static int v_shm_lock(sqlite3_file *p, int offset, int n, int flags)
{
	const sqlite3_io_methods *m = real(p)->pMethods;
	return m->iVersion >= 2 ? m->xShmLock(real(p), offset, n, flags)
				: SQLITE_IOERR_SHMLOCK;
}

static void v_shm_barrier(sqlite3_file *p)
{
	const sqlite3_io_methods *m = real(p)->pMethods;
	if (m->iVersion >= 2) {
		m->xShmBarrier(real(p));
	}
}

static int v_shm_unmap(sqlite3_file *p, int del)
{
	const sqlite3_io_methods *m = real(p)->pMethods;
	return m->iVersion >= 2 ? m->xShmUnmap(real(p), del) : SQLITE_OK;
}

static int v_fetch(sqlite3_file *p, sqlite3_int64 o, int n, void **out)
{
	const sqlite3_io_methods *m = real(p)->pMethods;
	if (m->iVersion >= 3) {
		return m->xFetch(real(p), o, n, out);
	}
	*out = NULL;
	return SQLITE_OK;
}

static int v_unfetch(sqlite3_file *p, sqlite3_int64 o, void *q)
{
	const sqlite3_io_methods *m = real(p)->pMethods;
	return m->iVersion >= 3 ? m->xUnfetch(real(p), o, q) : SQLITE_OK;
}

static const sqlite3_io_methods methods = {
    .iVersion = 3,
    .xClose = v_close,
    .xRead = v_read,
    .xWrite = v_write,
    .xTruncate = v_truncate,
    .xSync = v_sync,
    .xFileSize = v_file_size,
    .xLock = v_lock,
    .xUnlock = v_unlock,
    .xCheckReservedLock = v_check_reserved,
    .xFileControl = v_file_control,
    .xSectorSize = v_sector_size,
    .xDeviceCharacteristics = v_device,
    .xShmMap = v_shm_map,
    .xShmLock = v_shm_lock,
    .xShmBarrier = v_shm_barrier,
    .xShmUnmap = v_shm_unmap,
    .xFetch = v_fetch,
    .xUnfetch = v_unfetch,
};

static int v_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *p,
		  int flags, int *out_flags)
{
	vfile *f = (vfile *)p;
	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)((char *)p + REAL_AT);
	f->wal = (flags & SQLITE_OPEN_WAL) != 0;
	f->end = -1;
	int rc = root->xOpen(root, name, f->real, flags, out_flags);
	/* As for any VFS: with pMethods set, SQLite calls xClose even when
	 * xOpen failed, and that closes the real file. */
	f->base.pMethods = f->real->pMethods != NULL ? &methods : NULL;
	return rc;
}

/* The rest is the default VFS's, called with its own sqlite3_vfs. */
static int v_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
	return root->xDelete(root, name, sync_dir);
}

static int v_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
	return root->xAccess(root, name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
	return root->xFullPathname(root, name, n, out);
}

static void *v_dlopen(sqlite3_vfs *v, const char *name)
{
	return root->xDlOpen(root, name);
}

static void v_dlerror(sqlite3_vfs *v, int n, char *msg)
{
	root->xDlError(root, n, msg);
}

static void (*v_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
	return root->xDlSym(root, h, sym);
}

static void v_dlclose(sqlite3_vfs *v, void *h)
{
	root->xDlClose(root, h);
}

static int v_randomness(sqlite3_vfs *v, int n, char *out)
{
	return root->xRandomness(root, n, out);
}

static int v_sleep(sqlite3_vfs *v, int us)
{
	return root->xSleep(root, us);
}

static int v_current_time(sqlite3_vfs *v, double *out)
{
	return root->xCurrentTime(root, out);
}

static int v_last_error(sqlite3_vfs *v, int n, char *msg)
{
	return root->xGetLastError ? root->xGetLastError(root, n, msg) : 0;
}

static int v_current_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
	return root->xCurrentTimeInt64(root, out);
}

static int v_set_syscall(sqlite3_vfs *v, const char *name,
			 sqlite3_syscall_ptr fn)
{
	return root->xSetSystemCall(root, name, fn);
}

static sqlite3_syscall_ptr v_get_syscall(sqlite3_vfs *v, const char *name)
{
	return root->xGetSystemCall(root, name);
}

static const char *v_next_syscall(sqlite3_vfs *v, const char *name)
{
	return root->xNextSystemCall(root, name);
}

static void register_once(void)
{
	if (sqlite3_initialize() != SQLITE_OK ||
	    (root = sqlite3_vfs_find(NULL)) == NULL) {
		return;
	}
	vfs.iVersion = root->iVersion < 3 ? root->iVersion : 3;
	vfs.szOsFile = (int)(REAL_AT + (size_t)root->szOsFile);
	vfs.mxPathname = root->mxPathname;
	vfs.zName = SIM_VFS_NAME;
	vfs.xOpen = v_open;
	vfs.xDelete = v_delete;
	vfs.xAccess = v_access;
	vfs.xFullPathname = v_full_pathname;
	vfs.xDlOpen = v_dlopen;
	vfs.xDlError = v_dlerror;
	vfs.xDlSym = v_dlsym;
	vfs.xDlClose = v_dlclose;
	vfs.xRandomness = v_randomness;
	vfs.xSleep = v_sleep;
	vfs.xCurrentTime = v_current_time;
	vfs.xGetLastError = v_last_error;
	if (vfs.iVersion >= 2) {
		vfs.xCurrentTimeInt64 = v_current_time64;
	}
	if (vfs.iVersion >= 3) {
		vfs.xSetSystemCall = v_set_syscall;
		vfs.xGetSystemCall = v_get_syscall;
		vfs.xNextSystemCall = v_next_syscall;
	}
	registered = sqlite3_vfs_register(&vfs, 0) == SQLITE_OK;
}

const char *sim_vfs_register(void)
{
	pthread_once(&once, register_once);
	return registered ? SIM_VFS_NAME : NULL;
}
