/*
 * Decision trace (like Open vSwitch's ofproto/trace): one packet is built from a
 * description and pushed through the real pipeline while every stage writes down what it
 * decided. Nothing leaves the process: ports record "would transmit" instead of sending,
 * and the router does not queue the packet behind an ARP resolution.
 *
 * Stages hold a reference to the shared `TraceHolder`; when no trace runs `current` is
 * null and each stage pays one null check.
 */

export interface TraceStep {
  stage: string;
  decision: string;
}

export class DecisionTrace {
  readonly steps: TraceStep[] = [];
  readonly outputs: string[] = [];
  note(stage: string, decision: string): void {
    this.steps.push({ stage, decision });
  }
}

export class TraceHolder {
  current: DecisionTrace | null = null;
}
