import { randomFillSync } from 'node:crypto';

const OWNER_POOL = Buffer.alloc(16 * 256);
let ownerOffset = OWNER_POOL.length;

/** newOwnerId: 128 random bits from the CSPRNG as 32 hex characters (drawn from a pooled buffer, refilled every 256 ids). */
export function newOwnerId(): string {
  if (ownerOffset === OWNER_POOL.length) {
    randomFillSync(OWNER_POOL);
    ownerOffset = 0;
  }
  ownerOffset += 16;
  return OWNER_POOL.toString('hex', ownerOffset - 16, ownerOffset);
}
