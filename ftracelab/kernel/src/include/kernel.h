/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The mini-kernel's one header: types, the kernel's function attributes,
 * per-CPU data, tasks, the scheduler's runqueues, hrtimers and the
 * structures the syscall paths walk.
 *
 * Names follow Linux 6.12 so that a student can grep the real tree for them.
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
/*
 * Boot-only code. Linux traces it during boot but frees its ftrace records
 * with the init memory (ftrace_free_init_mem), so it is never in
 * available_filter_functions afterwards; here it is simply not instrumented.
 */
#define __init notrace noinline __attribute__((__section__(".init.text")))

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define READ_ONCE(x) (*(volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))
#define barrier() asm volatile("" ::: "memory")
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - __builtin_offsetof(type, member)))

/* errno values (include/uapi/asm-generic/errno-base.h). */
#define EPERM 1
#define ENOENT 2
#define EINTR 4
#define EIO 5
#define EBADF 9
#define ECHILD 10
#define EAGAIN 11
#define ENOMEM 12
#define EFAULT 14
#define EBUSY 16
#define EINVAL 22
#define EMFILE 24
#define ENOSPC 28
#define ENAMETOOLONG 36
#define ENOSYS 38

#define NR_CPUS 8
#define NR_OPEN_DEFAULT 64
#define PATH_MAX 256
#define TASK_COMM_LEN 16
#define MAX_RT_PRIO 100
#define NICE_WIDTH 40
#define THREAD_SIZE 0x4000
#define MAX_TASKS 64
#define NSEC_PER_USEC 1000ull
#define NSEC_PER_MSEC 1000000ull
#define HZ 250
#define TICK_NSEC (1000000000ull / HZ)

/*
 * The lab's cost model: simulated time, in ns, that code charges where it
 * does work. KCOST() at the top of a function is its fixed cost, so even
 * the smallest function has a non-zero duration, as on real hardware.
 */
#define KCOST(ns) simulate_work(ns)

/* The registers the entry code saves, in the kernel's order. */
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx;
	unsigned long r11, r10, r9, r8, ax, cx, dx, si, di;
	unsigned long orig_ax;
	unsigned long ip, cs, flags, sp, ss;
};
#define X86_EFLAGS_IF 0x200ul
#define __KERNEL_CS 0x10
#define __KERNEL_DS 0x18
#define __USER_CS 0x33
#define __USER_DS 0x2b

struct list_head { struct list_head *next, *prev; };

static inline void INIT_LIST_HEAD(struct list_head *l) { l->next = l->prev = l; }
static inline bool list_empty(const struct list_head *l) { return l->next == l; }
static inline void list_add_tail(struct list_head *n, struct list_head *h)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}
static inline void list_del_init(struct list_head *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	INIT_LIST_HEAD(e);
}

typedef struct { volatile int locked; } raw_spinlock_t;

/* Task states (include/linux/sched.h). */
#define TASK_RUNNING 0x0000
#define TASK_INTERRUPTIBLE 0x0001
#define TASK_UNINTERRUPTIBLE 0x0002
#define EXIT_DEAD 0x0010
#define EXIT_ZOMBIE 0x0020
#define TASK_DEAD 0x0080

struct sched_entity {
	u64 vruntime;
	u64 exec_start;
	u64 sum_exec_runtime;
	u64 prev_sum_exec_runtime;
	u64 slice;
	struct list_head run_node;
	int on_rq;
};

struct thread_struct {
	unsigned long sp;   /* saved kernel stack pointer (__switch_to_asm) */
};

struct wait_queue_head {
	raw_spinlock_t lock;
	struct list_head head;
};

struct task_struct {
	int pid;                        /* 0x00 */
	int tgid;                       /* 0x04 */
	char comm[TASK_COMM_LEN];       /* 0x08 */
	struct files_struct *files;     /* 0x18 */
	unsigned int __state;           /* 0x20 */
	int exit_state;                 /* 0x24 */
	int exit_code;                  /* 0x28 */
	int cpu;                        /* 0x2c */
	int on_cpu;                     /* 0x30 */
	int on_rq;                      /* 0x34 */
	unsigned long trace_recursion;  /* 0x38 */
	void *ret_stack;                /* 0x40: fgraph shadow stack */
	int curr_ret_stack;             /* 0x48 */
	int curr_ret_depth;             /* 0x4c */
	void *stack;                    /* 0x50: kernel stack base */
	unsigned long user_sp;          /* 0x58: user stack top given at creation */
	struct thread_struct thread;    /* 0x60 */
	struct sched_entity se;
	struct task_struct *parent;
	struct wait_queue_head wait_chldexit;
	int nr_children;
	int used;                       /* slot in use in the task table */
	int usage;                      /* references: parent's wait4, the last switch */
	struct mm_struct *mm;           /* NULL for kernel threads */
	int trace_overrun;              /* fgraph: calls the full shadow stack dropped */
	int tracing_graph_pause;        /* fgraph: no new frames while set */
	unsigned long long ftrace_timestamp;   /* fgraph sleep-time accounting */
	int prio;                       /* 120: every task is SCHED_NORMAL, nice 0 */
};

struct mm_struct {
	unsigned long mmap_base;
	unsigned long mmap_end;
	unsigned long mmap_next;
};

/*
 * Per-CPU hot data, reached through %gs like x86's pcpu_hot. The layout is
 * shared with entry_64.S and with the lab (machine/memory.py): change all
 * three together.
 */
struct pcpu_hot {
	struct pcpu_hot *self;            /* 0x00: this_cpu_ptr() base */
	struct task_struct *current_task; /* 0x08 */
	int preempt_count;                /* 0x10 */
	int cpu_number;                   /* 0x14 */
	unsigned long top_of_stack;       /* 0x18 */
	unsigned long user_sp_scratch;    /* 0x20: entry_SYSCALL_64 scratch */
	u64 clock_ns;                     /* 0x28: this CPU's virtual clock */
	u64 nr_syscalls;                  /* 0x30 */
	u64 rand_state;                   /* 0x38: seeded latency generator */
	u64 slice_end_ns;                 /* 0x40: the lab preempts the vCPU here */
	u64 next_event_ns;                /* 0x48: local APIC timer deadline */
	u32 ipi_pending;                  /* 0x50: reschedule IPI sent to this CPU */
	u32 need_resched;                 /* 0x54: TIF_NEED_RESCHED of current */
	u64 scratch[2];                   /* 0x58: software IRET */
	u64 nr_irqs;                      /* 0x68 */
	u64 nr_switches;                  /* 0x70 */
	u32 softirq_pending;              /* 0x78 */
	u32 pad;
	struct task_struct *idle;         /* 0x80 */
	struct rq *rq;                    /* 0x88 */
};

#define PREEMPT_OFFSET 0x1
#define SOFTIRQ_OFFSET 0x100
#define HARDIRQ_OFFSET 0x10000

static __always_inline struct pcpu_hot *this_cpu(void)
{
	struct pcpu_hot *p;

	asm volatile("mov %%gs:0, %0" : "=r"(p));
	return p;
}

/*
 * current: one %gs-relative load that gcc may reuse within a function, like
 * x86's this_cpu_read_stable(pcpu_hot.current_task). It is stable because a
 * task reads the same value on whichever CPU it runs; this_cpu() is not.
 */
static __always_inline struct task_struct *get_current(void)
{
	struct task_struct *t;

	asm("mov %%gs:8, %0" : "=r"(t));   /* offsetof(struct pcpu_hot, current_task) */
	return t;
}
#define current get_current()
#define smp_processor_id() (this_cpu()->cpu_number)
#define in_interrupt() (this_cpu()->preempt_count & (HARDIRQ_OFFSET * 0xf | SOFTIRQ_OFFSET * 0xff))

static __always_inline void local_irq_disable(void) { asm volatile("cli" ::: "memory"); }
static __always_inline void local_irq_enable(void) { asm volatile("sti" ::: "memory"); }
static __always_inline unsigned long arch_local_save_flags(void)
{
	unsigned long f;

	asm volatile("pushfq; popq %0" : "=r"(f) :: "memory");
	return f;
}
static __always_inline unsigned long local_irq_save(void)
{
	unsigned long f = arch_local_save_flags();

	local_irq_disable();
	return f;
}
static __always_inline void local_irq_restore(unsigned long f)
{
	if (f & X86_EFLAGS_IF)
		local_irq_enable();
}
static __always_inline void preempt_disable(void) { this_cpu()->preempt_count++; barrier(); }
static __always_inline void preempt_enable_no_resched(void) { barrier(); this_cpu()->preempt_count--; }

/* A CPU's runqueue (kernel/sched/sched.h), CFS only. */
struct rq {
	raw_spinlock_t __lock;
	int cpu;
	unsigned int nr_running;
	struct list_head cfs_tasks;   /* runnable, not running */
	struct task_struct *curr;
	struct task_struct *idle;
	u64 clock;
	u64 min_vruntime;
	u64 nr_switches;
};

struct hrtimer_cpu_base {
	raw_spinlock_t lock;
	struct list_head active;      /* sorted by expiry */
	u64 expires_next;
};

/* Virtual time (kernel/time/vclock.c) and the lab's vCPU scheduling. */
void paravirt_slice_end(void);
u64 sched_clock(void);
u64 ktime_get(void);
void simulate_work(u64 ns);

/* simulate_work() inlined, for the tracer's own hot paths. */
static __always_inline void simulate_work_inline(u64 ns)
{
	struct pcpu_hot *cpu = this_cpu();

	cpu->clock_ns += ns;
	if (unlikely(cpu->clock_ns >= cpu->slice_end_ns))
		paravirt_slice_end();
}
u64 random_latency(u64 base_ns, u64 spread_ns);
extern struct pcpu_hot *per_cpu_hot[NR_CPUS];
extern unsigned int nr_cpu_ids;

/* Locking (kernel/locking). */
struct mutex {
	long owner;
	raw_spinlock_t wait_lock;
	struct list_head wait_list;
};
#define DEFINE_MUTEX_INIT(name) { 0, { 0 }, { &(name).wait_list, &(name).wait_list } }
void mutex_lock(struct mutex *lock);
void mutex_unlock(struct mutex *lock);
void mutex_init(struct mutex *lock);
void _raw_spin_lock(raw_spinlock_t *lock);
void _raw_spin_unlock(raw_spinlock_t *lock);
unsigned long _raw_spin_lock_irqsave(raw_spinlock_t *lock);
void _raw_spin_unlock_irqrestore(raw_spinlock_t *lock, unsigned long flags);
void _raw_spin_lock_irq(raw_spinlock_t *lock);
void _raw_spin_unlock_irq(raw_spinlock_t *lock);
void __rcu_read_lock(void);
void __rcu_read_unlock(void);

/* Wait queues and wake-ups (kernel/sched/wait.c, core.c). */
void init_waitqueue_head(struct wait_queue_head *wq);
struct wait_queue_entry {
	struct list_head entry;
	struct task_struct *task;
};
#define DEFINE_WAIT(name) struct wait_queue_entry name = { { &(name).entry, &(name).entry }, NULL }
void prepare_to_wait_event(struct wait_queue_head *wq, struct wait_queue_entry *w, int state);
void finish_wait(struct wait_queue_head *wq, struct wait_queue_entry *w);
void __wake_up(struct wait_queue_head *wq, unsigned int mode, int nr, void *key);
int wake_up_process(struct task_struct *p);
int try_to_wake_up(struct task_struct *p, unsigned int state, int wake_flags);
void wake_up_new_task(struct task_struct *p);

/* Memory (mm/slub.c). */
struct kmem_cache {
	const char *name;
	unsigned int size;
	unsigned int nr_objs;
	unsigned long inuse[2];  /* bitmap, one bit per object (<= 128) */
	void *objs;
};
void *kmem_cache_alloc_noprof(struct kmem_cache *s, unsigned int flags);
void *kmem_cache_alloc_node_noprof(struct kmem_cache *s, unsigned int flags, int node);
void kmem_cache_free(struct kmem_cache *s, void *obj);
void *__kmalloc_noprof(size_t size, unsigned int flags);
void kfree(const void *obj);
#define GFP_KERNEL 0xcc0u
#define NUMA_NO_NODE (-1)

/* Strings (lib/string.c, arch memcpy: not traced, as on x86). */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int strcmp(const char *a, const char *b);
size_t strlen(const char *s);

/* The virtual file system. */
struct file;
struct inode;
struct bio;
struct kiocb { struct file *ki_filp; loff_t ki_pos; };
struct iov_iter { char *buf; size_t count; };

struct file_operations {
	ssize_t (*read_iter)(struct kiocb *iocb, struct iov_iter *to);
	ssize_t (*write_iter)(struct kiocb *iocb, struct iov_iter *from);
	int (*open)(struct inode *inode, struct file *file);
	int (*release)(struct inode *inode, struct file *file);
};

struct inode {
	unsigned long i_ino;
	unsigned int i_mode;
	loff_t i_size;
	char *i_data;        /* page-cache stand-in */
	loff_t i_capacity;
	u64 i_atime;
	u64 i_mtime;
	u64 i_read_latency_ns; /* > 0: backed by the slow disk, not cached */
	const struct file_operations *i_fop;
	struct mutex i_rwsem;
	raw_spinlock_t i_lock;
	u64 i_cached_upto;     /* bytes read in from the disk so far */
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
	struct file **fd;        /* the fd array, kmalloc'ed (alloc_fdtable) */
	int count;
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
void down_write(struct mutex *sem);
void up_write(struct mutex *sem);
struct files_struct *alloc_files(void);
void exit_files(struct task_struct *tsk);

/* Block layer (block/, drivers/block/null_blk). */
struct bio {
	struct inode *bi_inode;
	loff_t bi_pos;
	size_t bi_size;
	int bi_status;
	volatile int bi_done;
	struct task_struct *bi_waiter;
	void (*bi_end_io)(struct bio *bio);
	struct list_head bi_list;
};
void submit_bio(struct bio *bio);
int submit_bio_wait(struct bio *bio);
void bio_endio(struct bio *bio);
void blk_mq_complete_request(struct bio *bio);

/* Scheduler, idle and tasks (kernel/sched, kernel/fork.c, kernel/exit.c). */
#define SM_NONE 0
#define SM_PREEMPT 1
void schedule(void);
void __schedule(unsigned int sched_mode);
void preempt_schedule_irq(void);
void io_schedule(void);
void schedule_idle(void);
void __noreturn do_exit(long code);
int __task_pid_nr_ns(struct task_struct *task, int type);
void sched_fork(struct task_struct *p);
void resched_curr(struct rq *rq);
void sched_tick(void);
struct task_struct *alloc_task_struct(void);
void free_task(struct task_struct *tsk);
void __put_task_struct(struct task_struct *tsk);

/*
 * Drop a reference (include/linux/sched/task.h, inline). A child has two:
 * one its parent drops in wait4(), one dropped after its last switch.
 */
static __always_inline void put_task_struct(struct task_struct *t)
{
	if (__atomic_sub_fetch(&t->usage, 1, __ATOMIC_ACQ_REL) == 0)
		__put_task_struct(t);
}
extern struct task_struct init_task;
extern struct task_struct task_table[MAX_TASKS];
void ftrace_graph_init_task(struct task_struct *t);   /* kernel/trace/fgraph.c */
void ftrace_graph_exit_task(struct task_struct *t);
void ftrace_graph_probe_sched_switch(struct task_struct *prev, struct task_struct *next);
extern int ftrace_graph_active;

/* Time and interrupts (kernel/time, kernel/softirq.c). */
struct hrtimer {
	u64 expires;
	int (*function)(struct hrtimer *timer);
	struct list_head node;
	int cpu;
	int queued;
};
#define HRTIMER_NORESTART 0
#define HRTIMER_RESTART 1
void hrtimer_init(struct hrtimer *timer, int (*fn)(struct hrtimer *));
void hrtimer_start_range_ns(struct hrtimer *timer, u64 expires, u64 delta_ns, int mode);
int hrtimer_try_to_cancel(struct hrtimer *timer);
void hrtimer_interrupt(void);
void irq_enter_rcu(void);
void irq_exit_rcu(void);
void raise_softirq(unsigned int nr);
void raise_softirq_irqoff(unsigned int nr);
#define TIMER_SOFTIRQ 1
#define BLOCK_SOFTIRQ 4
#define SCHED_SOFTIRQ 7
#define NR_SOFTIRQS 10
void open_softirq(int nr, void (*action)(void));
void native_smp_send_reschedule(int cpu);
void update_process_times(int user_tick);

/* Device interrupts (kernel/irq/handle.c): legacy ISA line numbers. */
#define NO_DEADLINE (~0ull)
#define NR_IRQS 16
#define IRQ_VECTOR_BASE 0x20            /* vector = IRQ_VECTOR_BASE + irq */
typedef int irqreturn_t;
#define IRQ_NONE 0
#define IRQ_HANDLED 1
typedef irqreturn_t (*irq_handler_t)(int irq, void *dev_id);
struct irqaction {
	irq_handler_t handler;
	void *dev_id;
	const char *name;
	struct irqaction *next;
	unsigned int irq;
};
struct irq_desc {
	struct irqaction *action;
	unsigned int irq;
	int in_progress;
	unsigned long tot_count;
};
int request_threaded_irq(unsigned int irq, irq_handler_t handler, irq_handler_t thread_fn,
			 unsigned long flags, const char *name, void *dev_id);
static inline int request_irq(unsigned int irq, irq_handler_t handler, unsigned long flags,
			      const char *name, void *dev)
{
	return request_threaded_irq(irq, handler, NULL, flags, name, dev);
}
void lab_irq_raise_at(unsigned int irq, u64 when);

/* The user-space area tasks get stacks from (machine/memory.py). */
#define USER_STACKS_BASE 0x7ffff0000000ul
#define USER_STACK_SLOT 0x10000ul
#define USER_MMAP_BASE 0x7fffe0000000ul

#endif /* FTRACELAB_KERNEL_H */
