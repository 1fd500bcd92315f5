/**
 * The one font every figure draws text in. resvg draws no text at all without fonts, so it
 * gets DejaVu Sans explicitly (Debian's fonts-dejavu-core), never "whatever the system has":
 * the bytes of a figure must not depend on the machine's font set.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { StageError } from '../../core/contract.js';

const FONT_DIR = '/usr/share/fonts/truetype/dejavu';
const FONTS = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'].map((f) => join(FONT_DIR, f));

/** Options for resvg that draw in DejaVu Sans only; a StageError naming the package when it is missing. */
export function resvgFontOptions() {
  const missing = FONTS.filter((f) => !existsSync(f));
  if (missing.length)
    throw new StageError(
      `chart fonts missing (${missing.join(', ')}): install Debian's fonts-dejavu-core (apt-get install -y fonts-dejavu-core)`,
    );
  return { loadSystemFonts: false, fontFiles: FONTS, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' };
}
