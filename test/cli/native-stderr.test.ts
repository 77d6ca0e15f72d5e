/**
 * A clean terminal (issues 14 and 15): what dawn.node prints from native code while we look for an
 * adapter is captured, the lines a user cannot act on are dropped, and the rest become one note
 * each. Before, every GPU run (and every GPU error) began with two "artificially reduced" warnings.
 */
import { spawnSync } from 'node:child_process';
import { writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nativeMessages } from '../../src/gpu/device.ts';
import { captureStderr } from '../../src/node/webgpu.ts';
import { noGpu } from '../gpu.ts';
import { NODE_TRAIN, REPO_ROOT, tempDir, tinyCorpus } from './helpers.ts';

describe('native stderr', () => {
  it('captureStderr takes what is written to file descriptor 2, and gives the descriptor back', () => {
    const first = captureStderr(() => {
      writeSync(2, 'Warning: from native code\n');
      return 42;
    });
    expect(first).toEqual({ value: 42, printed: 'Warning: from native code\n' });
    expect(captureStderr(() => writeSync(2, 'again\n')).printed).toBe('again\n');
    expect(() => captureStderr(() => { throw new Error('boom'); })).toThrow('boom');
    expect(captureStderr(() => 1).printed).toBe('');
  });

  it('keeps one line per message a user can act on', () => {
    const printed = [
      'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.',
      'Warning: vkCreateInstance failed with VK_ERROR_INCOMPATIBLE_DRIVER',
      '    at CheckVkSuccessImpl (/home/runner/work/node-webgpu/third_party/dawn/src/dawn/native/vulkan/VulkanError.cpp:106)',
      '',
      'Warning: eglInitialize failed with EGL_NOT_INITIALIZED',
      ' - While trying to discover a BackendType::OpenGL adapter.',
    ].join('\n');
    expect(nativeMessages(printed)).toEqual(['vkCreateInstance failed with VK_ERROR_INCOMPATIBLE_DRIVER', 'eglInitialize failed with EGL_NOT_INITIALIZED']);
  });

  const train = (env: Record<string, string>) => {
    const dir = tempDir();
    const corpus = tinyCorpus(dir);
    return spawnSync(NODE_TRAIN[0]!, [...NODE_TRAIN.slice(1), '--corpus', corpus, '--hidden', '8', '--seq-length', '8', '--batch-size', '2',
      '--iterations', '2', '--eval-every', '0', '--sample-every', '0', '--checkpoint', join(dir, 'c.safetensors'), '--quiet'],
    { cwd: REPO_ROOT, env: { ...process.env, FORCE_COLOR: '0', ...env }, encoding: 'utf8', timeout: 60_000 });
  };

  it.skipIf(noGpu)('a GPU run prints nothing on stderr', () => {
    const r = train({});
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
  });

  it.skipIf(noGpu)('without a Vulkan driver, one line says why before the OpenGL adapter is used', () => {
    const r = train({ VK_ICD_FILENAMES: '/nonexistent/icd.json', WEBGPU_BACKEND: '' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^note: no adapter from Vulkan: [^\n]+; using OpenGL \(compatibility\)\n$/);
  });
});
