// SPDX-License-Identifier: Apache-2.0
/*
 * The lab's user space: small programs the workloads run. They talk to the
 * kernel only through the SYSCALL instruction, as a real program does.
 *
 * The lab starts a program at its function with %rdi pointing at a
 * struct wl_args it has filled in, and with user_exit as the return
 * address, so returning from the program exits the task.
 */
typedef unsigned long u64;
typedef long s64;

struct wl_args {
	char path[64];
	u64 loops;
	u64 chunk;
	u64 size;
};

#define O_RDONLY 0
#define O_WRONLY 1
#define O_CREAT 0100
#define O_TRUNC 01000
#define AT_FDCWD -100

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

static inline s64 syscall3(s64 nr, s64 a, s64 b, s64 c)
{
	s64 ret;

	asm volatile("leaq 1f(%%rip), %%rcx\n\t"
		     "pushfq\n\t"
		     "popq %%r11\n\t"
		     "jmp *lstar(%%rip)\n"
		     "1:"
		     : "=a"(ret)
		     : "0"(nr), "D"(a), "S"(b), "d"(c)
		     : "rcx", "r11", "memory", "cc");
	return ret;
}

#define sys_read(fd, buf, n) syscall3(0, (fd), (s64)(buf), (n))
#define sys_write(fd, buf, n) syscall3(1, (fd), (s64)(buf), (n))
#define sys_close(fd) syscall3(3, (fd), 0, 0)
#define sys_getpid() syscall3(39, 0, 0, 0)
#define sys_openat(path, flags) syscall3(257, AT_FDCWD, (s64)(path), (flags))

static char buf[4096];

/* cat FILE > /dev/null, args->loops times, args->chunk bytes per read. */
s64 wl_cat(struct wl_args *args)
{
	u64 chunk = args->chunk && args->chunk <= sizeof(buf) ? args->chunk : sizeof(buf);
	s64 total = 0;
	u64 i;

	for (i = 0; i < args->loops; i++) {
		s64 out = sys_openat("/dev/null", O_WRONLY);
		s64 in = sys_openat(args->path, O_RDONLY);
		s64 n;

		if (in < 0 || out < 0)
			return in < 0 ? in : out;
		while ((n = sys_read(in, buf, chunk)) > 0) {
			sys_write(out, buf, n);
			total += n;
		}
		sys_close(in);
		sys_close(out);
	}
	return 0;
}

/* Write args->size bytes to FILE (truncating it), args->chunk at a time. */
s64 wl_write(struct wl_args *args)
{
	u64 chunk = args->chunk && args->chunk <= sizeof(buf) ? args->chunk : sizeof(buf);
	u64 i, done;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = 'a' + (char)(i % 26);
	for (i = 0; i < args->loops; i++) {
		s64 fd = sys_openat(args->path, O_WRONLY | O_CREAT | O_TRUNC);

		if (fd < 0)
			return fd;
		for (done = 0; done < args->size; done += chunk) {
			u64 n = args->size - done < chunk ? args->size - done : chunk;

			if (sys_write(fd, buf, n) < 0)
				break;
		}
		sys_close(fd);
	}
	return 0;
}

/* The cheapest syscall, args->loops times: entry/exit overhead. */
s64 wl_getpid(struct wl_args *args)
{
	u64 i;

	for (i = 0; i < args->loops; i++)
		sys_getpid();
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
