/*
 * core/panic.h — Go's print + throw for impossible states.
 *
 * hs_print formats into a stack buffer and writes it to stderr with write(2), so
 * it neither allocates nor takes stdio's lock: it is safe from inside the
 * allocator, with the heap lock held, and after the heap is corrupt. hs_throw
 * prints "heapscope: fatal error: <msg>" and aborts. Callers print the values
 * that explain the failure first, as the runtime does.
 *
 * A program that wants to clean up first (the TUI restores the terminal) sets a
 * hook with hs_set_throw_hook; it runs once, before the message.
 */
#ifndef HS_PANIC_H
#define HS_PANIC_H

__attribute__((format(printf, 1, 2))) void hs_print(const char *fmt, ...);
__attribute__((noreturn)) void hs_throw(const char *msg);
void hs_set_throw_hook(void (*hook)(void));

#endif /* HS_PANIC_H */
