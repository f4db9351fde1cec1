/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The mini-kernel's one header: types, the kernel's function attributes,
 * per-CPU data and the structures the syscall path walks.
 *
 * Names follow Linux so that a student can grep the real tree for them.
 * Everything is much smaller than in Linux; nothing here is copied from it.
 */
#ifndef FTRACELAB_KERNEL_H
#define FTRACELAB_KERNEL_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char s8;
typedef int s32;
typedef long long s64;
typedef unsigned long size_t;
typedef long ssize_t;
typedef long long loff_t;
typedef int bool;
#define true 1
#define false 0
#define NULL ((void *)0)

/* Function attributes, as in include/linux/compiler_types.h. */
#define notrace __attribute__((__no_instrument_function__))
#define noinstr notrace __attribute__((__section__(".noinstr.text")))
#define noinline __attribute__((__noinline__))
#define __always_inline inline __attribute__((__always_inline__))
#define __noreturn __attribute__((__noreturn__))
#define __used __attribute__((__used__))
#define __aligned(x) __attribute__((__aligned__(x)))

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* errno values (include/uapi/asm-generic/errno-base.h). */
#define EPERM 1
#define ENOENT 2
#define EBADF 9
#define ENOMEM 12
#define EFAULT 14
#define EINVAL 22
#define EMFILE 24
#define ENOSPC 28
#define ENAMETOOLONG 36
#define ENOSYS 38

#define NR_CPUS 8
#define NR_OPEN_DEFAULT 64
#define PATH_MAX 256
#define TASK_COMM_LEN 16

/* The registers entry_SYSCALL_64 saves, in the kernel's order. */
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx;
	unsigned long r11, r10, r9, r8, ax, cx, dx, si, di;
	unsigned long orig_ax;
	unsigned long ip, cs, flags, sp, ss;
};

struct task_struct {
	int pid;
	int tgid;
	char comm[TASK_COMM_LEN];
	unsigned int state;
	struct files_struct *files;
	unsigned long trace_recursion;
	void *ret_stack; /* fgraph shadow stack */
	int curr_ret_stack;
	int curr_ret_depth;
};

/*
 * Per-CPU hot data, reached through %gs like x86's pcpu_hot. The layout is
 * shared with entry_64.S and with the lab (machine/percpu.py): change all
 * three together.
 */
struct pcpu_hot {
	struct pcpu_hot *self;          /* 0x00: this_cpu_ptr() base */
	struct task_struct *current_task; /* 0x08 */
	int preempt_count;              /* 0x10 */
	int cpu_number;                 /* 0x14 */
	unsigned long top_of_stack;     /* 0x18 */
	unsigned long user_sp_scratch;  /* 0x20: entry_SYSCALL_64 scratch */
	u64 clock_ns;                   /* 0x28: this CPU's virtual clock */
	u64 nr_syscalls;                /* 0x30 */
	u64 rand_state;                 /* 0x38: seeded latency generator */
};

static __always_inline struct pcpu_hot *this_cpu(void)
{
	struct pcpu_hot *p;

	asm volatile("mov %%gs:0, %0" : "=r"(p));
	return p;
}

#define current (this_cpu()->current_task)

/* Virtual time (kernel/time/vclock.c). */
u64 sched_clock(void);
u64 ktime_get(void);
void simulate_work(u64 ns);
u64 random_latency(u64 base_ns, u64 spread_ns);

/* Locking (kernel/locking). */
struct mutex { long owner; };
typedef struct { volatile int locked; } raw_spinlock_t;
void mutex_lock(struct mutex *lock);
void mutex_unlock(struct mutex *lock);
void _raw_spin_lock(raw_spinlock_t *lock);
void _raw_spin_unlock(raw_spinlock_t *lock);
void __rcu_read_lock(void);
void __rcu_read_unlock(void);

/* Memory (mm/slub.c). */
struct kmem_cache {
	const char *name;
	unsigned int size;
	unsigned int nr_objs;
	unsigned long inuse;  /* bitmap, one bit per object */
	void *objs;
};
void *kmem_cache_alloc_noprof(struct kmem_cache *s, unsigned int flags);
void kmem_cache_free(struct kmem_cache *s, void *obj);
void *__kmalloc_noprof(size_t size, unsigned int flags);
void kfree(const void *obj);
#define GFP_KERNEL 0xcc0u

/* Strings (lib/string.c, arch memcpy: not traced, as on x86). */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int strcmp(const char *a, const char *b);
size_t strlen(const char *s);

/* The virtual file system. */
struct file;
struct inode;
struct kiocb { struct file *ki_filp; loff_t ki_pos; };
struct iov_iter { char *buf; size_t count; };

struct file_operations {
	ssize_t (*read_iter)(struct kiocb *iocb, struct iov_iter *to);
	ssize_t (*write_iter)(struct kiocb *iocb, struct iov_iter *from);
	int (*open)(struct inode *inode, struct file *file);
};

struct inode {
	unsigned long i_ino;
	unsigned int i_mode;
	loff_t i_size;
	char *i_data;        /* page-cache stand-in */
	loff_t i_capacity;
	u64 i_atime;
	u64 i_mtime;
	u64 i_read_latency_ns; /* slow-device model */
	const struct file_operations *i_fop;
};

struct dentry {
	const char *d_name;
	struct inode *d_inode;
};

struct file {
	struct inode *f_inode;
	const struct file_operations *f_op;
	loff_t f_pos;
	unsigned int f_flags;
	unsigned int f_mode;
	long f_count;
	struct mutex f_pos_lock;
};
#define FMODE_READ 0x1
#define FMODE_WRITE 0x2

struct files_struct {
	raw_spinlock_t file_lock;
	unsigned long open_fds;  /* bitmap, NR_OPEN_DEFAULT bits */
	struct file *fd[NR_OPEN_DEFAULT];
};

struct filename {
	const char *name;
	char iname[PATH_MAX];
};

struct fd { struct file *file; unsigned int flags; };

/* fs/ entry points used across files. */
ssize_t ksys_read(unsigned int fd, char *buf, size_t count);
ssize_t ksys_write(unsigned int fd, const char *buf, size_t count);
ssize_t vfs_read(struct file *file, char *buf, size_t count, loff_t *pos);
ssize_t vfs_write(struct file *file, const char *buf, size_t count, loff_t *pos);
int rw_verify_area(int read_write, struct file *file, const loff_t *ppos, size_t count);
int security_file_permission(struct file *file, int mask);
int security_file_open(struct file *file);
int __fsnotify_parent(struct dentry *dentry, unsigned int mask, const void *data, int data_type);
struct fd fdget_pos(unsigned int fd);
void fput(struct file *file);
struct filename *getname(const char *filename);
void putname(struct filename *name);
int get_unused_fd_flags(unsigned int flags);
void put_unused_fd(unsigned int fd);
void fd_install(unsigned int fd, struct file *file);
struct file *do_filp_open(int dfd, struct filename *pathname, int flags);
struct file *alloc_empty_file(int flags);
int vfs_open(struct dentry *dentry, struct file *file);
struct file *file_close_fd(unsigned int fd);
struct dentry *ramfs_lookup(const char *name);
size_t copy_page_to_iter(const char *from, size_t bytes, struct iov_iter *i);
size_t copy_page_from_iter(char *to, size_t bytes, struct iov_iter *i);
unsigned long _copy_to_user(void *to, const void *from, unsigned long n);
unsigned long _copy_from_user(void *to, const void *from, unsigned long n);
void touch_atime(struct file *file);
void file_update_time(struct file *file);

/* Scheduler and idle (kernel/sched). */
void schedule(void);
void __schedule(unsigned int sched_mode);
void __noreturn do_idle(void);
void __noreturn do_exit(long code);
int __task_pid_nr_ns(struct task_struct *task, int type);

extern struct task_struct init_task;

#endif /* FTRACELAB_KERNEL_H */
