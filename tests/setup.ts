/**
 * Property tests run with a fixed fast-check seed, so `npm test` (and CI) is repeatable: a failure
 * prints its seed and path and replays. `KILN_FC_SEED=random` explores new cases instead;
 * `KILN_FC_SEED=N` replays seed N.
 */
import fc from 'fast-check';

const raw = process.env['KILN_FC_SEED'];
if (raw !== 'random') fc.configureGlobal({ seed: raw === undefined ? 20261130 : Number(raw) });
