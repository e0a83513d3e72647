/*
 * TCP connection tracking states and transitions, after netfilter's nf_conntrack_proto_tcp
 * (the tcp_conntracks[dir][flag-index][state] table), without sequence-window tracking
 * (like nf_conntrack_tcp_be_liberal=1): a packet's flags and direction drive the state.
 *
 * Choices (documented):
 *  - Loose pick-up (nf_conntrack_tcp_loose=1): a plain ACK of an untracked flow creates it in
 *    ESTABLISHED, so connections survive a tapbridge restart. Until a reply is seen such a flow
 *    (like any unreplied TCP flow) gets at most the UNACK timeout (300 s), not 5 days.
 *  - SYN/ACK, FIN or RST for an untracked flow are INVALID (dropped by the NAT: forwarding them
 *    untranslated would leak inside addresses).
 *  - RST before any reply was seen kills the flow at once (netfilter does the same).
 *  - A SYN in TIME_WAIT or CLOSE (either direction) reopens: the old flow is destroyed and the
 *    packet creates a new one.
 */

export const TCP_NONE = 0;
export const TCP_SYN_SENT = 1;
export const TCP_SYN_RECV = 2;
export const TCP_ESTABLISHED = 3;
export const TCP_FIN_WAIT = 4;
export const TCP_CLOSE_WAIT = 5;
export const TCP_LAST_ACK = 6;
export const TCP_TIME_WAIT = 7;
export const TCP_CLOSE = 8;
export const TCP_SYN_SENT2 = 9;
/** Table-only results. */
export const TCP_INVALID = 10;
export const TCP_IGNORE = 11;

export const TCP_STATE_NAMES: readonly string[] = [
  'NONE',
  'SYN_SENT',
  'SYN_RECV',
  'ESTABLISHED',
  'FIN_WAIT',
  'CLOSE_WAIT',
  'LAST_ACK',
  'TIME_WAIT',
  'CLOSE',
  'SYN_SENT2',
];

/* Flag indexes (netfilter's get_conntrack_index). */
export const TCPI_SYN = 0;
export const TCPI_SYNACK = 1;
export const TCPI_FIN = 2;
export const TCPI_ACK = 3;
export const TCPI_RST = 4;
export const TCPI_NONE = 5;

export const TCP_FLAG_FIN = 0x01;
export const TCP_FLAG_SYN = 0x02;
export const TCP_FLAG_RST = 0x04;
export const TCP_FLAG_ACK = 0x10;

/** Flag index for the TCP flags byte (offset 13 of the header). */
export function tcpFlagIndex(flags: number): number {
  if ((flags & TCP_FLAG_RST) !== 0) return TCPI_RST;
  if ((flags & TCP_FLAG_SYN) !== 0) return (flags & TCP_FLAG_ACK) !== 0 ? TCPI_SYNACK : TCPI_SYN;
  if ((flags & TCP_FLAG_FIN) !== 0) return TCPI_FIN;
  if ((flags & TCP_FLAG_ACK) !== 0) return TCPI_ACK;
  return TCPI_NONE;
}

const sSS = TCP_SYN_SENT,
  sSR = TCP_SYN_RECV,
  sES = TCP_ESTABLISHED,
  sFW = TCP_FIN_WAIT,
  sCW = TCP_CLOSE_WAIT,
  sLA = TCP_LAST_ACK,
  sTW = TCP_TIME_WAIT,
  sCL = TCP_CLOSE,
  sS2 = TCP_SYN_SENT2,
  sIV = TCP_INVALID,
  sIG = TCP_IGNORE;

// prettier-ignore
const TABLE: number[][][] = [
  [ // ORIGINAL
    //        sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2
    /*syn*/ [ sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2 ],
    /*sack*/[ sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR ],
    /*fin*/ [ sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV ],
    /*ack*/ [ sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV ],
    /*rst*/ [ sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL ],
    /*none*/[ sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV ],
  ],
  [ // REPLY
    //        sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2
    /*syn*/ [ sIV, sS2, sIV, sIV, sIV, sIV, sIV, sSS, sIV, sS2 ],
    /*sack*/[ sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR ],
    /*fin*/ [ sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV ],
    /*ack*/ [ sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG ],
    /*rst*/ [ sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL ],
    /*none*/[ sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV ],
  ],
];

/** Flattened table: TCP_TRANSITIONS[(dir * 6 + flagIndex) * 10 + state]. */
export const TCP_TRANSITIONS: Uint8Array = (() => {
  const t = new Uint8Array(2 * 6 * 10);
  for (let d = 0; d < 2; d++) for (let i = 0; i < 6; i++) for (let s = 0; s < 10; s++) t[(d * 6 + i) * 10 + s] = TABLE[d][i][s];
  return t;
})();

export function tcpNextState(dir: number, flagIndex: number, state: number): number {
  return TCP_TRANSITIONS[(dir * 6 + flagIndex) * 10 + state];
}
