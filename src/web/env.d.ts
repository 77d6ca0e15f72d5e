/// <reference types="vite/client" />

declare module 'virtual:corpora' {
  import type { CorpusEntry } from './corpora-manifest.ts';
  const corpora: CorpusEntry[];
  export default corpora;
}
