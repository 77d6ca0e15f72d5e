/** What the page knows about the embedded corpora before fetching any of them (see build/corpora-plugin.ts). */
export interface CorpusEntry {
  /** Short id used in the page and in saved state. */
  id: string;
  title: string;
  /** Written as progress.corpus in checkpoints made from this text. */
  checkpointName: string;
  /** Path of the .txt asset relative to the site's base URL. */
  file: string;
  /** The text as it comes, for the `raw` charset; absent where that is the cleaned text itself. */
  rawFile?: string;
  /** Code points of text. */
  chars: number;
  /** Lowercase by default (the seed's Reuters model was trained lowercased). */
  lowercase: boolean;
  about: string;
}
