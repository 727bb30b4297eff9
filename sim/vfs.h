/* sim/vfs.h: the SQLite VFS the trace writer opens its database with.
 *
 * It is the default VFS ("unix") with one change: appends to a WAL file
 * (the -wal next to a trace) are gathered in memory and written with one
 * pwrite per commit instead of two per page (a frame header, then the
 * page), which is most of the system calls of a commit. What reaches the
 * file, and when it is visible to others, does not change:
 *
 * - A commit's frames are all written, in one call, when the commit frame
 *   (the frame whose header carries the database size) has been appended:
 *   inside the write of its page, so a failure is that write's error and
 *   SQLite rolls the transaction back. SQLite makes a commit visible to
 *   readers only after that (in shared memory, the wal-index header), so
 *   no reader, in this process or another, ever looks for a frame that is
 *   still in memory.
 * - A process killed with frames in memory loses only frames of a
 *   transaction that had not committed, as if it had been killed before
 *   writing them.
 * - Any other write to the WAL (its header, a frame rewritten in place),
 *   and any read, size, truncate, sync or file-control call on it, first
 *   writes out what is gathered; a transaction bigger than the buffer
 *   (SIM_VFS_BUF_BYTES) writes it out as it fills.
 *
 * Other files (the database, its -shm) go straight to the default VFS. */
#ifndef TLSIM_SIM_VFS_H
#define TLSIM_SIM_VFS_H

#define SIM_VFS_NAME "tlsim-walbuf"
#define SIM_VFS_BUF_BYTES (512 * 1024)

/* sim_vfs_register registers the VFS under SIM_VFS_NAME (not as the
 * default), once per process; safe to call from any thread, any number of
 * times. Returns SIM_VFS_NAME for sqlite3_open_v2, or NULL if SQLite has
 * no default VFS or could not register it (then open with the default). */
const char *sim_vfs_register(void);

#endif
