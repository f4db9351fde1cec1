// SPDX-License-Identifier: Apache-2.0
/*
 * kernel/irq/{manage,handle,chip,spurious}.c and arch/x86/kernel/irq.c for the
 * mini-kernel: device interrupt lines (legacy ISA numbers, one edge-triggered
 * IO-APIC pin each), request_threaded_irq(), and the path of an interrupt:
 *
 *   asm_common_interrupt_N (entry_64.S, irqentry text)
 *     common_interrupt()                 noinstr, as DEFINE_IDTENTRY_IRQ makes it
 *       __common_interrupt()             vector -> irq_desc
 *         handle_edge_irq()              ack at the chip, then
 *           handle_irq_event()
 *             handle_irq_event_percpu()
 *               __handle_irq_event_percpu()   each irqaction between the
 *                                             irq_handler_entry/exit tracepoints
 *               add_interrupt_randomness(), note_interrupt()
 *
 * The "hardware" is the lab's: a device asks for its line to fire at a virtual
 * time (lab_irq_lines[], read by the vCPU scheduler as it reads the APIC
 * deadline) and the scheduler delivers vector IRQ_VECTOR_BASE + irq there.
 */
#include "kernel.h"
#include "trace_events.h"

void irqentry_exit(struct pt_regs *regs);

struct lab_irq_line {
	u64 deadline_ns;        /* NO_DEADLINE: nothing pending */
	int cpu;                /* where it is delivered */
	int pad;
};
__used struct lab_irq_line lab_irq_lines[NR_IRQS];
__used unsigned int lab_irq_armed;      /* bit per line with a deadline: the lab looks here first */

static struct irq_desc irq_descs[NR_IRQS];
static struct irqaction irq_actions[NR_IRQS];
__used unsigned long irqs_unhandled[NR_IRQS];
static u64 fast_pool[NR_CPUS];

/* The device side: raise the line at virtual time @when, on this CPU. */
notrace void lab_irq_raise_at(unsigned int irq, u64 when)
{
	struct pcpu_hot *cpu = this_cpu();

	lab_irq_lines[irq].cpu = cpu->cpu_number;
	WRITE_ONCE(lab_irq_lines[irq].deadline_ns, when);
	if (when == NO_DEADLINE) {
		lab_irq_armed &= ~(1u << irq);
		return;
	}
	lab_irq_armed |= 1u << irq;
	if (when < cpu->slice_end_ns)           /* the lab must take the CPU back then */
		WRITE_ONCE(cpu->slice_end_ns, when);
}

__init void init_IRQ(void)
{
	unsigned int i;

	for (i = 0; i < NR_IRQS; i++) {
		irq_descs[i].irq = i;
		lab_irq_lines[i].deadline_ns = NO_DEADLINE;
	}
}

noinline int request_threaded_irq(unsigned int irq, irq_handler_t handler, irq_handler_t thread_fn,
				  unsigned long flags, const char *name, void *dev_id)
{
	struct irqaction *action = &irq_actions[irq];

	KCOST(200);
	(void)thread_fn;
	(void)flags;
	if (irq >= NR_IRQS || !handler)
		return -EINVAL;
	action->handler = handler;
	action->dev_id = dev_id;
	action->name = name;
	action->irq = irq;
	action->next = irq_descs[irq].action;
	irq_descs[irq].action = action;
	return 0;
}

static noinline irqreturn_t __handle_irq_event_percpu(struct irq_desc *desc)
{
	irqreturn_t retval = IRQ_NONE;
	struct irqaction *action;

	KCOST(30);
	for (action = desc->action; action; action = action->next) {
		irqreturn_t res;

		trace_irq_handler_entry(desc->irq, action);
		res = action->handler(desc->irq, action->dev_id);
		trace_irq_handler_exit(desc->irq, action, res);
		retval |= res;
	}
	return retval;
}

/* drivers/char/random.c: a few bits of the interrupt's timing into this CPU's pool. */
noinline void add_interrupt_randomness(int irq)
{
	struct pcpu_hot *cpu = this_cpu();
	u64 *pool = &fast_pool[cpu->cpu_number];

	KCOST(40);
	*pool = (*pool << 7 | *pool >> 57) ^ cpu->clock_ns ^ (u64)irq;
}

/* kernel/irq/spurious.c: count what nobody handled. */
noinline void note_interrupt(struct irq_desc *desc, irqreturn_t action_ret)
{
	KCOST(15);
	if (action_ret == IRQ_NONE)
		irqs_unhandled[desc->irq]++;
}

noinline irqreturn_t handle_irq_event_percpu(struct irq_desc *desc)
{
	irqreturn_t retval;

	KCOST(15);
	retval = __handle_irq_event_percpu(desc);
	add_interrupt_randomness(desc->irq);
	note_interrupt(desc, retval);
	return retval;
}

noinline irqreturn_t handle_irq_event(struct irq_desc *desc)
{
	irqreturn_t ret;

	KCOST(20);
	desc->in_progress = 1;
	ret = handle_irq_event_percpu(desc);
	desc->in_progress = 0;
	return ret;
}

/* arch/x86/kernel/apic/vector.c: the EOI for an edge interrupt, at ack time. */
noinline void apic_ack_irq(struct irq_desc *desc)
{
	(void)desc;
	KCOST(60);
}

noinline void irq_chip_ack_parent(struct irq_desc *desc)
{
	KCOST(10);
	apic_ack_irq(desc);                      /* the IO-APIC pin's parent: the vector domain */
}

noinline void handle_edge_irq(struct irq_desc *desc)
{
	KCOST(30);
	desc->tot_count++;                       /* kstat_incr_irqs_this_cpu() */
	irq_chip_ack_parent(desc);
	if (!desc->action) {
		note_interrupt(desc, IRQ_NONE);
		return;
	}
	handle_irq_event(desc);
}

static noinline void __common_interrupt(struct pt_regs *regs, u32 vector)
{
	unsigned int irq = vector - IRQ_VECTOR_BASE;

	(void)regs;
	KCOST(40);
	this_cpu()->nr_irqs++;
	if (irq < NR_IRQS)
		handle_edge_irq(&irq_descs[irq]);   /* desc->handle_irq */
}

noinstr void common_interrupt(struct pt_regs *regs, u32 vector)
{
	irq_enter_rcu();
	__common_interrupt(regs, vector);
	irq_exit_rcu();
	irqentry_exit(regs);
}
