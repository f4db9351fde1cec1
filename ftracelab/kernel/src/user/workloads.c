// SPDX-License-Identifier: Apache-2.0
/*
 * The lab's user space: small programs the workloads run. They talk to the
 * kernel only through system calls, as a real program does.
 *
 * The lab starts a program in a new task (lab_spawn) at its function with
 * %rdi pointing at a struct wl_args it has filled in, and with user_exit as
 * the return address, so returning from the program exits the task.
 * All tasks share one address space; clone() children get stacks from mmap().
 */
typedef unsigned long u64;
typedef long s64;
typedef unsigned int u32;

struct wl_args {
	char path[64];   /* 0x00 */
	u64 loops;       /* 0x40 */
	u64 chunk;       /* 0x48 */
	u64 size;        /* 0x50 */
	u64 tasks;       /* 0x58 */
	u64 sleep_ns;    /* 0x60 */
};

#define O_RDONLY 0
#define O_WRONLY 1
#define O_CREAT 0100
#define O_TRUNC 01000
#define AT_FDCWD -100
#define MAP_PRIVATE 0x02
#define MAP_ANONYMOUS 0x20
#define PROT_RW 0x3
#define CHILD_STACK 0x2000

/*
 * MSR_LSTAR: the address SYSCALL jumps to. The lab writes entry_SYSCALL_64's
 * address here at boot.
 *
 * Unicorn's SYSCALL instruction does nothing but call a host hook, and a
 * Python hook per syscall would cost more than the whole kernel path. So
 * this user space performs SYSCALL's register effects itself, exactly as
 * the CPU would: RCX = the return address, R11 = RFLAGS, RIP = LSTAR. The
 * kernel cannot tell the difference. (A real "syscall" instruction also
 * works: machine/cpu.py hooks it and does the same.)
 */
unsigned long lstar;

#define SYSCALL_INSN "leaq 1f(%%rip), %%rcx\n\tpushfq\n\tpopq %%r11\n\tjmp *lstar(%%rip)\n1:"

static inline s64 syscall6(s64 nr, s64 a, s64 b, s64 c, s64 d, s64 e, s64 f)
{
	register s64 r10 asm("r10") = d;
	register s64 r8 asm("r8") = e;
	register s64 r9 asm("r9") = f;
	s64 ret;

	asm volatile(SYSCALL_INSN
		     : "=a"(ret)
		     : "0"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
		     : "rcx", "r11", "memory", "cc");
	return ret;
}

#define syscall3(nr, a, b, c) syscall6(nr, a, b, c, 0, 0, 0)
#define sys_read(fd, buf, n) syscall3(0, (fd), (s64)(buf), (n))
#define sys_write(fd, buf, n) syscall3(1, (fd), (s64)(buf), (n))
#define sys_close(fd) syscall3(3, (fd), 0, 0)
#define sys_mmap(len) syscall6(9, 0, (len), PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
#define sys_sched_yield() syscall3(24, 0, 0, 0)
#define sys_getpid() syscall3(39, 0, 0, 0)
#define sys_wait4() syscall6(61, -1, 0, 0, 0, 0, 0)
#define sys_openat(path, flags) syscall3(257, (u32)AT_FDCWD, (s64)(path), (flags))  /* an int in %edi */

struct timespec { s64 tv_sec; s64 tv_nsec; };

static s64 sys_nanosleep(u64 ns)
{
	struct timespec ts = { (s64)(ns / 1000000000ul), (s64)(ns % 1000000000ul) };

	return syscall3(35, (s64)&ts, 0, 0);
}

/*
 * clone(2) for a thread-like child: it starts on its own stack, pops the
 * function and argument the parent left there, runs fn(arg) and exits.
 */
static s64 spawn(s64 (*fn)(u64), u64 arg)
{
	s64 stack = sys_mmap(CHILD_STACK);
	u64 *sp;
	s64 ret;

	if (stack < 0)
		return stack;
	sp = (u64 *)(stack + CHILD_STACK);
	*--sp = arg;
	*--sp = (u64)fn;
	asm volatile(SYSCALL_INSN "\n\t"
		     "testq %%rax, %%rax\n\t"
		     "jnz 2f\n\t"
		     "popq %%rax\n\t"          /* the child, on its new stack */
		     "popq %%rdi\n\t"
		     "call *%%rax\n\t"
		     "movq %%rax, %%rdi\n\t"
		     "movl $60, %%eax\n\t"
		     "leaq 3f(%%rip), %%rcx\n\t"
		     "pushfq\n\t"
		     "popq %%r11\n\t"
		     "jmp *lstar(%%rip)\n"
		     "3:\tud2\n"
		     "2:"
		     : "=a"(ret)
		     : "0"(56L), "D"(0x100L /* CLONE_VM */), "S"(sp)
		     : "rcx", "r11", "rdx", "r8", "r9", "r10", "memory", "cc");
	return ret;
}

static char buf[4096];

/* cat FILE > /dev/null, args->loops times, args->chunk bytes per read. */
s64 wl_cat(struct wl_args *args)
{
	static char cbuf[4096];
	u64 chunk = args->chunk && args->chunk <= sizeof(cbuf) ? args->chunk : sizeof(cbuf);
	u64 i;

	for (i = 0; i < args->loops; i++) {
		s64 out = sys_openat("/dev/null", O_WRONLY);
		s64 in = sys_openat(args->path, O_RDONLY);
		s64 n;

		if (in < 0 || out < 0)
			return in < 0 ? in : out;
		while ((n = sys_read(in, cbuf, chunk)) > 0)
			sys_write(out, cbuf, n);
		sys_close(in);
		sys_close(out);
	}
	return 0;
}

/* Write args->size bytes to FILE (truncating it), args->chunk at a time. */
static s64 write_file(struct wl_args *args, char *data)
{
	u64 chunk = args->chunk && args->chunk <= 4096 ? args->chunk : 4096;
	u64 i, done;

	for (i = 0; i < args->loops; i++) {
		s64 fd = sys_openat(args->path, O_WRONLY | O_CREAT | O_TRUNC);

		if (fd < 0)
			return fd;
		for (done = 0; done < args->size; done += chunk) {
			u64 n = args->size - done < chunk ? args->size - done : chunk;

			if (sys_write(fd, data, n) < 0)
				break;
		}
		sys_close(fd);
	}
	return 0;
}

s64 wl_write(struct wl_args *args)
{
	u64 i;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = 'a' + (char)(i % 26);
	return write_file(args, buf);
}

/* The cheapest syscall, args->loops times: entry/exit overhead. */
s64 wl_getpid(struct wl_args *args)
{
	u64 i;

	for (i = 0; i < args->loops; i++)
		sys_getpid();
	return 0;
}

static s64 fork_child(u64 arg)
{
	(void)arg;
	sys_getpid();
	return 0;
}

/* Fork storm: args->loops rounds of args->tasks children, reaped with wait4. */
s64 wl_fork_storm(struct wl_args *args)
{
	u64 i, j;

	for (i = 0; i < args->loops; i++) {
		for (j = 0; j < args->tasks; j++)
			if (spawn(fork_child, j) < 0)
				return -1;
		for (j = 0; j < args->tasks; j++)
			sys_wait4();
	}
	return 0;
}

static s64 sleeper(u64 arg)
{
	struct wl_args *args = (struct wl_args *)arg;
	u64 i;

	for (i = 0; i < args->loops; i++)
		sys_nanosleep(args->sleep_ns);
	return 0;
}

/* A task that sleeps args->sleep_ns, args->loops times: timer wake-ups. */
s64 wl_sleep(struct wl_args *args)
{
	if (spawn(sleeper, (u64)args) < 0)
		return -1;
	return sys_wait4() < 0;
}

static s64 contender(u64 arg)
{
	struct wl_args *args = (struct wl_args *)arg;
	static char wbuf[4096];

	return write_file(args, wbuf);
}

/* args->tasks writers of the same file: i_rwsem and i_lock contention. */
s64 wl_lock_contention(struct wl_args *args)
{
	u64 j;

	for (j = 0; j < args->tasks; j++)
		if (spawn(contender, (u64)args) < 0)
			return -1;
	for (j = 0; j < args->tasks; j++)
		sys_wait4();
	return 0;
}

void do_user_exit(s64 code)
{
	syscall3(231, code, 0, 0);
	__builtin_unreachable();
}

/* Returning from a program lands here: exit_group(return value). */
asm(".text\n"
    ".globl user_exit\n"
    ".type user_exit, @function\n"
    "user_exit:\n\t"
    "movq %rax, %rdi\n\t"
    "call do_user_exit\n\t"
    "ud2\n"
    ".size user_exit, .-user_exit\n");

static s64 hog(u64 arg)
{
	struct wl_args *args = (struct wl_args *)arg;
	u64 i;

	for (i = 0; i < args->loops; i++)
		sys_getpid();
	return 0;
}

/* args->tasks busy tasks: with more tasks than CPUs the tick time-slices them. */
s64 wl_cpu_hog(struct wl_args *args)
{
	u64 j;

	for (j = 0; j < args->tasks; j++)
		if (spawn(hog, (u64)args) < 0)
			return -1;
	for (j = 0; j < args->tasks; j++)
		sys_wait4();
	return 0;
}
