// Type-level: a frame exists only on an accepted decision, so a caller cannot send the bytes of a
// rejection or a quarantine to a meter without first checking the outcome (docs/validator.md).
// These run in vitest's typecheck mode; a @ts-expect-error that stops erroring fails the test.
import { describe, expectTypeOf, test } from 'vitest';
import type { Decision, Validator } from '@smki/validator';

declare const validator: Validator;
declare function send(frame: Uint8Array): void;

describe('decisions are a discriminated union on outcome', () => {
  test('only an accepted decision has a frame', async () => {
    const d = await validator.validate(new Uint8Array(0), { sender: '90B3D51F30010000' });
    // @ts-expect-error the frame is not there until the outcome is checked
    send(d.frame);
    if (d.outcome === 'accepted') send(d.frame);
    if (d.outcome === 'rejected') {
      // @ts-expect-error a rejection has no frame
      send(d.frame);
      expectTypeOf(d.code).toEqualTypeOf<import('@smki/core').SmkiErrorCode>();
    }
    if (d.outcome === 'quarantined') expectTypeOf(d.quarantineId).toBeString();
  });

  test('a batch returns one decision per command', () => {
    expectTypeOf(validator.validateBatch).returns.resolves.toEqualTypeOf<Decision[]>();
  });
});
