// SPDX-License-Identifier: Apache-2.0
/*
 * drivers/tty/tty_io.c, tty_port.c, n_tty.c, serial/serial_core.c and
 * serial/8250/8250_port.c for the mini-kernel: /dev/ttyS0 on a 16550A UART at
 * 115200 baud, IRQ 4, write side only.
 *
 *   write(2) -> tty_write -> file_tty_write -> n_tty_write -> uart_write
 *     (copies into the port's 4 KiB xmit ring) -> __uart_start -> serial8250_start_tx
 *     (sets IER.THRI: the UART interrupts when its transmit FIFO is empty)
 *   IRQ 4 -> serial8250_interrupt -> serial8250_default_handle_irq
 *     -> serial8250_handle_irq -> serial8250_tx_chars (up to 16 bytes into the FIFO;
 *        below WAKEUP_CHARS pending: uart_write_wakeup -> tty_port_tty_wakeup ->
 *        tty_port_default_wakeup -> tty_wakeup, which wakes the writer)
 *
 * A writer that finds the ring full sleeps on tty->write_wait; so does close(2)
 * until the ring is empty (tty_release -> uart_close -> tty_port_close ->
 * tty_port_close_start -> tty_wait_until_sent). The UART itself
 * is the lab's: the registers io_serial_out()/io_serial_in() touch are modelled
 * below (a byte takes 10 bit times to send; the FIFO-empty interrupt is raised on
 * the line at the virtual time the FIFO drains). No output processing (OPOST):
 * bytes go out as written.
 */
#include "kernel.h"

#define UART_TX 0
#define UART_IER 1
#define UART_IIR 2
#define UART_LSR 5
#define UART_IER_THRI 0x02
#define UART_IIR_NO_INT 0x01
#define UART_IIR_THRI 0x02
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40
#define UART_XMIT_SIZE 4096
#define WAKEUP_CHARS 256
#define SERIAL_IRQ 4
#define FIFO_SIZE 16
#define BAUD 115200
#define CHAR_NS (10ull * 1000000000ull / BAUD)      /* start + 8 data + stop bits */

struct uart_8250_port {
	char xmit[UART_XMIT_SIZE];      /* the circ_buf / xmit kfifo */
	unsigned int head, tail;
	unsigned int ier;               /* the shadow of IER */
	unsigned int fifosize;
	raw_spinlock_t lock;            /* uart_port_lock() */
	const char *name;
	/* the hardware */
	unsigned int hw_ier;
	u64 hw_drain_ns;                /* when the FIFO and the shift register are empty */
	u64 tx_bytes;
};

struct tty_struct {
	struct uart_8250_port *port;
	struct wait_queue_head write_wait;
	struct mutex atomic_write_lock;
	int count;
};

static struct uart_8250_port serial8250_port = { .fifosize = FIFO_SIZE, .name = "ttyS0" };
static struct tty_struct ttyS0_tty = { .port = &serial8250_port };

/* ---- the UART as the lab models it (its registers) ---- */

static notrace void uart_hw_update(struct uart_8250_port *up)
{
	u64 now = sched_clock();

	if (!(up->hw_ier & UART_IER_THRI)) {
		lab_irq_raise_at(SERIAL_IRQ, NO_DEADLINE);
		return;
	}
	lab_irq_raise_at(SERIAL_IRQ, up->hw_drain_ns > now ? up->hw_drain_ns : now);
}

noinline void io_serial_out(struct uart_8250_port *up, int offset, int value)
{
	u64 now = sched_clock();

	KCOST(30);                      /* an outb to the UART */
	if (offset == UART_TX) {
		up->hw_drain_ns = (up->hw_drain_ns > now ? up->hw_drain_ns : now) + CHAR_NS;
		up->tx_bytes++;
	} else if (offset == UART_IER) {
		up->hw_ier = (unsigned int)value;
	}
	uart_hw_update(up);
}

noinline unsigned int io_serial_in(struct uart_8250_port *up, int offset)
{
	bool empty = sched_clock() >= up->hw_drain_ns;

	KCOST(30);                      /* an inb */
	if (offset == UART_LSR)
		return empty ? UART_LSR_THRE | UART_LSR_TEMT : 0;
	if (offset == UART_IIR)
		return (up->hw_ier & UART_IER_THRI) && empty ? UART_IIR_THRI : UART_IIR_NO_INT;
	return 0;
}

/* ---- drivers/tty/serial/8250/8250_port.c ---- */

static inline unsigned int uart_circ_chars_pending(struct uart_8250_port *up)
{
	return (up->head - up->tail) & (UART_XMIT_SIZE - 1);
}

static inline void __stop_tx(struct uart_8250_port *up)
{
	if (up->ier & UART_IER_THRI) {
		up->ier &= ~UART_IER_THRI;
		io_serial_out(up, UART_IER, (int)up->ier);
	}
}

noinline void serial8250_start_tx(struct uart_8250_port *up)
{
	KCOST(40);
	if (!(up->ier & UART_IER_THRI)) {       /* serial8250_set_THRI(): the FIFO is empty, */
		up->ier |= UART_IER_THRI;           /* so the UART interrupts at once */
		io_serial_out(up, UART_IER, (int)up->ier);
	}
}

void uart_write_wakeup(struct uart_8250_port *up);

noinline void serial8250_tx_chars(struct uart_8250_port *up)
{
	int count = (int)up->fifosize;

	KCOST(60);
	while (count-- > 0 && uart_circ_chars_pending(up)) {
		io_serial_out(up, UART_TX, up->xmit[up->tail]);
		up->tail = (up->tail + 1) & (UART_XMIT_SIZE - 1);
	}
	if (uart_circ_chars_pending(up) < WAKEUP_CHARS)
		uart_write_wakeup(up);
	if (!uart_circ_chars_pending(up))
		__stop_tx(up);
}

noinline int serial8250_handle_irq(struct uart_8250_port *up, unsigned int iir)
{
	unsigned long flags;

	KCOST(50);
	if (iir & UART_IIR_NO_INT)
		return 0;
	flags = _raw_spin_lock_irqsave(&up->lock);
	if (io_serial_in(up, UART_LSR) & UART_LSR_THRE)
		serial8250_tx_chars(up);
	_raw_spin_unlock_irqrestore(&up->lock, flags);
	return 1;
}

noinline int serial8250_default_handle_irq(struct uart_8250_port *up)
{
	KCOST(20);
	return serial8250_handle_irq(up, io_serial_in(up, UART_IIR));
}

/* 8250_core.c: the ISR of an IRQ line's chain of ports (one here). */
noinline irqreturn_t serial8250_interrupt(int irq, void *dev_id)
{
	struct uart_8250_port *up = dev_id;
	int handled = 0;

	(void)irq;
	KCOST(30);
	handled |= serial8250_default_handle_irq(up);     /* port->handle_irq() */
	return handled ? IRQ_HANDLED : IRQ_NONE;
}

/* ---- drivers/tty/tty_io.c, tty_port.c ---- */

noinline void tty_wakeup(struct tty_struct *tty)
{
	KCOST(30);
	__wake_up(&tty->write_wait, TASK_INTERRUPTIBLE, 1, NULL);   /* wake_up_interruptible_poll() */
}

noinline void tty_port_default_wakeup(struct tty_struct *tty)
{
	KCOST(15);
	tty_wakeup(tty);
}

noinline void tty_port_tty_wakeup(struct tty_struct *tty)
{
	KCOST(10);
	tty_port_default_wakeup(tty);                    /* port->client_ops->write_wakeup() */
}

/* ---- drivers/tty/serial/serial_core.c ---- */

noinline void uart_write_wakeup(struct uart_8250_port *up)
{
	(void)up;
	KCOST(10);
	tty_port_tty_wakeup(&ttyS0_tty);
}

noinline void __uart_start(struct uart_8250_port *up)
{
	KCOST(20);
	serial8250_start_tx(up);                          /* port->ops->start_tx() */
}

noinline unsigned int uart_write_room(struct tty_struct *tty)
{
	KCOST(20);
	return UART_XMIT_SIZE - 1 - uart_circ_chars_pending(tty->port);
}

noinline unsigned int tty_write_room(struct tty_struct *tty)
{
	KCOST(10);
	return uart_write_room(tty);
}

noinline ssize_t uart_write(struct tty_struct *tty, const char *buf, size_t count)
{
	struct uart_8250_port *up = tty->port;
	unsigned long flags;
	size_t c = 0;

	KCOST(80);
	flags = _raw_spin_lock_irqsave(&up->lock);
	while (c < count && uart_circ_chars_pending(up) < UART_XMIT_SIZE - 1) {
		up->xmit[up->head] = buf[c++];
		up->head = (up->head + 1) & (UART_XMIT_SIZE - 1);
	}
	__uart_start(up);
	_raw_spin_unlock_irqrestore(&up->lock, flags);
	return (ssize_t)c;
}

/* ---- drivers/tty/n_tty.c: the default line discipline's write ---- */

noinline ssize_t n_tty_write(struct tty_struct *tty, struct file *file, const char *buf, size_t nr)
{
	const char *b = buf;
	DEFINE_WAIT(wait);

	(void)file;
	KCOST(60);
	for (;;) {
		ssize_t c = uart_write(tty, b, nr);         /* tty->ops->write() */

		b += c;
		nr -= (size_t)c;
		if (!nr)
			break;
		prepare_to_wait_event(&tty->write_wait, &wait, TASK_INTERRUPTIBLE);
		if (!tty_write_room(tty))
			schedule();                             /* wait_woken() */
		finish_wait(&tty->write_wait, &wait);
	}
	return b - buf;
}

/* ---- drivers/tty/tty_io.c ---- */

noinline int tty_write_lock(struct tty_struct *tty)
{
	KCOST(10);
	mutex_lock(&tty->atomic_write_lock);
	return 0;
}

noinline void tty_write_unlock(struct tty_struct *tty)
{
	KCOST(10);
	mutex_unlock(&tty->atomic_write_lock);
	__wake_up(&tty->write_wait, TASK_INTERRUPTIBLE, 1, NULL);
}

static char tty_write_buf[2048];                    /* tty->write_buf */

noinline ssize_t file_tty_write(struct file *file, struct kiocb *iocb, struct iov_iter *from)
{
	struct tty_struct *tty = &ttyS0_tty;
	ssize_t written = 0;

	(void)iocb;
	KCOST(50);
	tty_write_lock(tty);
	while (from->count) {                           /* iterate_tty_write(), inlined */
		size_t size = from->count < sizeof(tty_write_buf) ? from->count : sizeof(tty_write_buf);
		ssize_t ret;

		copy_page_from_iter(tty_write_buf, size, from);
		ret = n_tty_write(tty, file, tty_write_buf, size);
		if (ret <= 0)
			break;
		written += ret;
	}
	tty_write_unlock(tty);
	return written;
}

noinline ssize_t tty_write(struct kiocb *iocb, struct iov_iter *from)
{
	KCOST(20);
	return file_tty_write(iocb->ki_filp, iocb, from);
}

noinline ssize_t tty_read(struct kiocb *iocb, struct iov_iter *to)
{
	(void)iocb;
	(void)to;
	KCOST(20);
	return 0;                                        /* nothing typed */
}

noinline int tty_open(struct inode *inode, struct file *filp)
{
	(void)inode;
	(void)filp;
	KCOST(120);
	ttyS0_tty.count++;
	return 0;
}

noinline void tty_wait_until_sent(struct tty_struct *tty)
{
	DEFINE_WAIT(wait);

	KCOST(40);
	for (;;) {                      /* wait_event_interruptible(, !tty_chars_in_buffer()) */
		prepare_to_wait_event(&tty->write_wait, &wait, TASK_INTERRUPTIBLE);
		if (!uart_circ_chars_pending(tty->port))
			break;
		schedule();
	}
	finish_wait(&tty->write_wait, &wait);
}

noinline void tty_port_close_start(struct tty_struct *tty)
{
	KCOST(30);
	tty_wait_until_sent(tty);                        /* port->closing_wait */
}

noinline void tty_port_close(struct tty_struct *tty)
{
	KCOST(20);
	tty_port_close_start(tty);
	tty->count--;
}

noinline void uart_close(struct tty_struct *tty)
{
	KCOST(20);
	tty_port_close(tty);
}

noinline int tty_release(struct inode *inode, struct file *filp)
{
	(void)inode;
	(void)filp;
	KCOST(80);
	uart_close(&ttyS0_tty);                          /* tty->ops->close() */
	return 0;
}

static const struct file_operations tty_fops = {
	.read_iter = tty_read,
	.write_iter = tty_write,
	.open = tty_open,
	.release = tty_release,
};
static struct inode ttyS0_inode = { .i_ino = 7, .i_fop = &tty_fops };
struct dentry dev_ttyS0_dentry = { "ttyS0", &ttyS0_inode };

__init void serial8250_init(void)
{
	init_waitqueue_head(&ttyS0_tty.write_wait);
	mutex_init(&ttyS0_tty.atomic_write_lock);
	request_irq(SERIAL_IRQ, serial8250_interrupt, 0, serial8250_port.name, &serial8250_port);
}
