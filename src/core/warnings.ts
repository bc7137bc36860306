/**
 * Something that works now but can go wrong later, which the app should know about: emitted as the
 * `warning` event, never thrown. Ominipg emits each one once per client and subject.
 * - "SEQUENCE_IDS_MAY_COLLIDE": `sequences: "advance"` with tables whose key a local sequence generates, or a
 *   remote sequence this role may not move past pushed ids (no UPDATE on it): another client, or the server, can
 *   mint the same ids (such a collision is refused, never written over);
 * - "SEQUENCE_LEASE_FAILED": with the default `sequences: "auto"`, no ids could be leased for a sequence
 *   (no USAGE on the remote sequence, the remote column has none...): its ids are minted locally meanwhile;
 * - "SEQUENCE_LEASE_OVERRUN": with `"auto"`, a sequence handed out more ids between two syncs than its leased
 *   blocks held: the ids past them may collide with other clients' (raise `leaseSize`, or sync more often);
 * - the remote change feed's (`sync.feed`, docs/SYNC.md "The change feed"), given again after a while when the
 *   condition lasts: "FEED_WAL_RETAINED" (its slot holds back more WAL than `sync.feed.warnRetainedBytes`: no
 *   drainer runs?), "FEED_UNAVAILABLE" (it could not be set up), "FEED_DRAIN_FAILED", "FEED_SLOT_REPLACED" (a
 *   lost or missing slot was replaced: every client diffs once), "FEED_REGISTER_FAILED" (this client's position
 *   could not be recorded: the feed keeps rows for the retention instead).
 */
export interface OminipgWarning {
  code: WarningCode;
  message: string;
  /** The table ("schema.table") it is about, if one. */
  table?: string;
  /** FEED_WAL_RETAINED: the WAL the feed's slot holds back, in bytes. */
  retainedBytes?: number;
}

export type WarningCode =
  | "SEQUENCE_IDS_MAY_COLLIDE"
  | "SEQUENCE_LEASE_FAILED"
  | "SEQUENCE_LEASE_OVERRUN"
  | "FEED_WAL_RETAINED"
  | "FEED_UNAVAILABLE"
  | "FEED_DRAIN_FAILED"
  | "FEED_SLOT_REPLACED"
  | "FEED_REGISTER_FAILED";
