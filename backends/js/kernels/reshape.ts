/**
 * reshape: the same elements in the same order. Most reshapes cost nothing: the emitter makes the
 * result another name for the operand's array. This kernel runs only when the memory plan gave the
 * result a buffer of its own, and then it is one copy.
 */
import type { Kernel } from './kernel.js';

export const reshapeKernel: Kernel = (c) => `${c.out}.set(${c.ins[0]});`;
