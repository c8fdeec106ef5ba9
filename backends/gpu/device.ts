/**
 * Choosing and checking the device. gpu.js falls back to its CPU kernel with only a console
 * warning; kiln never does: after a probe kernel runs, the class of the kernel in use must be the
 * requested one, or the compile fails with a K1022 naming the device.
 *
 * - headlessgl: npm `gl` (WebGL1 through Mesa); needs an X display (`xvfb-run -a` on a server).
 * - webgpu: npm `webgpu` (Dawn). Without a GPU, Dawn takes the SwiftShader Vulkan driver that
 *   Debian's chromium ships; VK_ICD_FILENAMES is pointed at it when unset. WebGPU kernels are
 *   asynchronous, so in Node they run in a worker thread that the caller waits on (webgpu-host.ts).
 * - webgl2: browsers only (gpu.js's browser bundle); in Node it is an error.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { KilnError } from '../../graph/errors.js';
import { WebGpuHost } from './webgpu-host.js';

export type DeviceName = 'headlessgl' | 'webgpu' | 'webgl2';
export type DeviceChoice = DeviceName | 'auto';
export const DEVICES: readonly DeviceChoice[] = ['auto', 'headlessgl', 'webgpu', 'webgl2'];

/** The gpu.js kernel class each device must run on. */
export const KERNEL_CLASS: Readonly<Record<DeviceName, string>> = { headlessgl: 'HeadlessGLKernel', webgpu: 'WebGPUKernel', webgl2: 'WebGL2Kernel' };

const require = createRequire(import.meta.url);
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type GpuClass = any;

export function loadGpuJs(): { GPU: GpuClass } {
  return require('gpu.js') as { GPU: GpuClass };
}

/**
 * What brings headless-gl in. npm `gl` is built from source against these Debian packages, so it
 * is not among kiln's dependencies (a fresh machine's `npm install` would fail on it): this
 * script installs it into node_modules.
 */
export const HEADLESSGL_SETUP = 'apt-get install xvfb libxi-dev libglew-dev, then npm run setup:headlessgl';

/** Whether npm `gl` is in node_modules at all (npm run setup:headlessgl puts it there). */
function glInstalled(): boolean {
  try {
    require.resolve('gl');
    return true;
  } catch {
    return false;
  }
}

/** Why headless-gl cannot run here, or undefined when it should. */
export function headlessGlProblem(): string | undefined {
  if (!glInstalled()) return `headless-gl (npm gl, built from source) is not installed here: ${HEADLESSGL_SETUP}`;
  if (process.platform === 'linux' && !process.env['DISPLAY'])
    return 'headless-gl needs an X display and none is set (DISPLAY is empty): run the command under `xvfb-run -a` (Debian: xvfb)';
  try {
    const gl = require('gl') as (w: number, h: number) => unknown;
    const ctx = gl(1, 1) as unknown as { getExtension(n: string): { destroy(): void } | null } | null;
    if (!ctx) return 'headless-gl could not create a WebGL context (is Mesa installed and the display working?)';
    ctx.getExtension('STACKGL_destroy_context')?.destroy();
  } catch (e) {
    return `headless-gl (npm gl) does not load: ${(e as Error).message.split('\n')[0]} — ${HEADLESSGL_SETUP}`;
  }
  return undefined;
}

/** The Vulkan loader Dawn opens, where one is on this machine (a path), else undefined. */
function vulkanLoader(): string | undefined {
  const dirs = [...(process.env['LD_LIBRARY_PATH'] ?? '').split(':').filter(Boolean), '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu', '/usr/local/lib'];
  return dirs.map((d) => `${d}/libvulkan.so.1`).find((f) => existsSync(f));
}

/**
 * Why WebGPU cannot run here, or undefined. Dawn is loaded only in the WebGPU worker (it allows
 * one user per process), which this asks for an adapter.
 */
export function webgpuProblem(): string | undefined {
  if (!process.env['VK_ICD_FILENAMES'] && existsSync(SWIFTSHADER_ICD)) process.env['VK_ICD_FILENAMES'] = SWIFTSHADER_ICD;
  // Without a loader Dawn can only fail, after printing a native warning: say why without asking it.
  if (process.platform === 'linux' && !vulkanLoader()) {
    const chromium = existsSync('/usr/lib/chromium/libvulkan.so.1') ? ', or start the process with LD_LIBRARY_PATH=/usr/lib/chromium, where chromium ships libvulkan.so.1' : '';
    return `Dawn (npm webgpu) needs a Vulkan loader and there is none here (no libvulkan.so.1): without a GPU, apt-get install libvulkan1 chromium (chromium ships the SwiftShader Vulkan driver)${chromium}`;
  }
  try {
    WebGpuHost.shared().call('probe');
    return undefined;
  } catch (e) {
    if ((e as { code?: string }).code !== 'K1022') return `npm webgpu (Dawn) does not load: ${(e as Error).message.split('\n')[0]}`;
  }
  const chromiumVulkan = existsSync('/usr/lib/chromium/libvulkan.so.1') && !(process.env['LD_LIBRARY_PATH'] ?? '').includes('chromium');
  return `Dawn found no WebGPU adapter${process.env['VK_ICD_FILENAMES'] ? ` (VK_ICD_FILENAMES=${process.env['VK_ICD_FILENAMES']})` : ''}; without a GPU it needs a Vulkan loader (Debian: libvulkan1${chromiumVulkan ? ', or start the process with LD_LIBRARY_PATH=/usr/lib/chromium, where chromium ships libvulkan.so.1' : ''}) and the SwiftShader driver from Debian's chromium`;
}

export function deviceError(device: string, why: string): KilnError {
  return new KilnError('K1022', `gpu backend: device '${device}' is not available: ${why}`);
}
