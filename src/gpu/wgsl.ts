/**
 * WGSL composition: a shader names the shared code it needs with a line
 *   //#include "lib/cell.wgsl"
 * and composeWgsl pastes that file (shaders/lib/) in its place, once per shader however often it
 * is named (lib files include each other too). Explicit and tiny on purpose: the composed text is
 * still plain WGSL (specialised by `override` constants, never by string assembly), and the test
 * in test/wgsl.test.ts checks that every include resolves and no function is defined twice.
 */
import hashWgsl from '../../shaders/lib/hash.wgsl?raw';
import reduceWgsl from '../../shaders/lib/reduce.wgsl?raw';
import cellWgsl from '../../shaders/lib/cell.wgsl?raw';
import cellStepWgsl from '../../shaders/lib/cell_step.wgsl?raw';
import sampleStepWgsl from '../../shaders/lib/sample_step.wgsl?raw';

/** The shared WGSL files, by the path an include line names (relative to shaders/). */
export const WGSL_LIB: Readonly<Record<string, string>> = {
  'lib/hash.wgsl': hashWgsl,
  'lib/reduce.wgsl': reduceWgsl,
  'lib/cell.wgsl': cellWgsl,
  'lib/cell_step.wgsl': cellStepWgsl,
  'lib/sample_step.wgsl': sampleStepWgsl,
};

const INCLUDE = /^\/\/#include "([^"]+)"[ \t]*$/gm;

/** `source` with every include line replaced by its file (a second include of a file by a note). */
export function composeWgsl(source: string, lib: Readonly<Record<string, string>> = WGSL_LIB, seen = new Set<string>()): string {
  return source.replace(INCLUDE, (_line, path: string) => {
    if (seen.has(path)) return `// ${path}: included above`;
    const text = lib[path];
    if (text === undefined) throw new Error(`WGSL include "${path}" names no file of shaders/lib (${Object.keys(lib).join(', ')})`);
    seen.add(path);
    return `// ---- ${path}\n${composeWgsl(text, lib, seen)}// ---- end of ${path}`;
  });
}
