/* The `experiment:` config section (faults and captures declared in the file). Filled in by issue 4. */
import { z } from 'zod';

export const experimentSchema = z.strictObject({});
