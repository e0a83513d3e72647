/*
 * The element graph: elements by name and the links between them, built from a plain,
 * serialisable GraphSpec (Snabb's config.app / config.link; Click's flattened config):
 *
 *   { elements: [{ name: 'switch/br0', kind: 'Switch', params: {...} }, ...],
 *     links:    ['dev/red[rx] -> [red]switch/br0', ...] }
 *
 * Kinds are looked up in a registry of factories supplied by the data plane, so this module
 * knows no element. Links are written "from[output] -> [input]to"; a missing [output] or
 * [input] means the element's only one.
 *
 * Wrappers (captures, faults: one input, one output) are spliced into an edge at runtime
 * and removed again without touching the elements at either end: `wrap(from, output,
 * wrapper, rank)` keeps the wrappers of one edge ordered by rank (e.g. ingress capture
 * before ingress faults before a bridge capture), so the chain is
 * from -> w1 -> w2 -> ... -> original target. With no wrapper the edge is one plain link:
 * zero cost when nothing is attached.
 */
import { disconnect, Element, type ElementInfo, type Link } from './element.js';

export interface ElementSpec {
  name: string;
  kind: string;
  params?: Record<string, unknown>;
}

export interface GraphSpec {
  elements: ElementSpec[];
  links: string[];
}

export type ElementFactory = (name: string, params: Record<string, unknown>) => Element;

export interface LinkInfo {
  from: string;
  output: string;
  to: string;
  input: string;
  packets: number;
}

export interface GraphInfo {
  elements: ElementInfo[];
  links: LinkInfo[];
}

interface Edge {
  from: Element;
  output: number;
  target: Element;
  targetInput: number;
  wrappers: { rank: number; element: Element }[];
}

const LINK_RE = /^\s*([^\s[\]]+)\s*(?:\[([^\]]+)\])?\s*->\s*(?:\[([^\]]+)\])?\s*([^\s[\]]+)\s*$/;

export class Graph {
  private readonly byName = new Map<string, Element>();
  private readonly order: Element[] = [];
  private readonly edges = new Map<string, Edge>();

  get elements(): readonly Element[] {
    return this.order;
  }

  element(name: string): Element | undefined {
    return this.byName.get(name);
  }

  get<T extends Element>(name: string, cls: abstract new (...args: never[]) => T): T {
    const e = this.byName.get(name);
    if (!(e instanceof cls)) throw new Error(`graph: no element '${name}' of kind ${cls.name}`);
    return e;
  }

  add<T extends Element>(e: T): T {
    if (this.byName.has(e.name)) throw new Error(`graph: element '${e.name}' exists already`);
    this.byName.set(e.name, e);
    this.order.push(e);
    return e;
  }

  /** Remove an element, every edge from or to it and their wrappers (links into it become unconnected). */
  remove(name: string): void {
    const e = this.byName.get(name);
    if (e === undefined) return;
    for (const [key, edge] of this.edges) {
      if (edge.from !== e && edge.target !== e) continue;
      for (const w of edge.wrappers) this.forget(w.element);
      if (edge.target === e) disconnect(edge.from.out[edge.output]);
      this.edges.delete(key);
    }
    this.forget(e);
  }

  /** Link from.out[output] to to.inputs[input] (names or indices). */
  connect(from: Element | string, output: string | number, to: Element | string, input: string | number): void {
    const a = typeof from === 'string' ? this.must(from) : from;
    const b = typeof to === 'string' ? this.must(to) : to;
    const o = typeof output === 'number' ? output : a.outputIndex(output);
    const i = typeof input === 'number' ? input : b.inputIndex(input);
    if (o < 0 || o >= a.out.length) throw new Error(`graph: ${a.name} has no output #${o}`);
    if (i < 0 || i >= b.inputs.length) throw new Error(`graph: ${b.name} has no input #${i}`);
    const edge: Edge = { from: a, output: o, target: b, targetInput: i, wrappers: [] };
    this.edges.set(edgeKey(a, o), edge);
    this.rewire(edge);
  }

  /** Parse and apply "from[out] -> [in]to". */
  link(text: string): void {
    const m = LINK_RE.exec(text);
    if (m === null) throw new Error(`graph: cannot parse link '${text}' (expected "a[out] -> [in]b")`);
    const [, fromName, out, inp, toName] = m;
    const a = this.must(fromName);
    const b = this.must(toName);
    this.connect(a, out ?? onlyOne(a.outputs, a.name, 'output'), b, inp ?? onlyOne(b.inputs, b.name, 'input'));
  }

  /** Build every element of the spec through the factories, then every link. */
  build(spec: GraphSpec, factories: Record<string, ElementFactory>): void {
    for (const e of spec.elements) {
      const make = factories[e.kind];
      if (make === undefined) throw new Error(`graph: element '${e.name}': unknown kind '${e.kind}'`);
      this.add(make(e.name, e.params ?? {}));
    }
    for (const l of spec.links) this.link(l);
  }

  /** Splice a one-in-one-out element into the edge leaving from.out[output], ordered by rank. */
  wrap(from: Element, output: number, wrapper: Element, rank: number): void {
    const edge = this.edges.get(edgeKey(from, output));
    if (edge === undefined) throw new Error(`graph: ${from.name}[${from.outputs[output]}] is not linked`);
    if (!this.byName.has(wrapper.name)) this.add(wrapper);
    edge.wrappers.push({ rank, element: wrapper });
    edge.wrappers.sort((x, y) => x.rank - y.rank);
    this.rewire(edge);
  }

  /** Take a wrapper out of whatever edge holds it and forget it. */
  unwrap(wrapper: Element): void {
    for (const edge of this.edges.values()) {
      const n = edge.wrappers.length;
      edge.wrappers = edge.wrappers.filter((w) => w.element !== wrapper);
      if (edge.wrappers.length !== n) this.rewire(edge);
    }
    this.forget(wrapper);
  }

  private forget(e: Element): void {
    if (this.byName.get(e.name) !== e) return;
    this.byName.delete(e.name);
    this.order.splice(this.order.indexOf(e), 1);
  }

  /** The element an edge finally delivers to (past its wrappers). */
  targetOf(from: Element, output: number): { element: Element; input: number } | null {
    const edge = this.edges.get(edgeKey(from, output));
    return edge === undefined ? null : { element: edge.target, input: edge.targetInput };
  }

  /** The edge delivering into `to`'s input `input` (its original source, before any wrapper), or null. */
  edgeInto(to: Element, input: number): { from: Element; output: number } | null {
    for (const e of this.edges.values()) if (e.target === to && e.targetInput === input) return { from: e.from, output: e.output };
    return null;
  }

  /** Every physical link (including the hops through wrappers). */
  links(): Link[] {
    const out: Link[] = [];
    for (const e of this.order) for (const l of e.out) if (this.isLinked(l)) out.push(l);
    return out;
  }

  describe(): GraphInfo {
    return {
      elements: this.order.map((e) => e.info()),
      links: this.links().map((l) => ({ from: l.from.name, output: l.from.outputs[l.fromOutput], to: l.to.name, input: l.to.inputs[l.toInput], packets: l.packets })),
    };
  }

  private isLinked(l: Link): boolean {
    return this.byName.get(l.to.name) === l.to;
  }

  private rewire(edge: Edge): void {
    let link = edge.from.out[edge.output];
    for (const w of edge.wrappers) {
      link.to = w.element;
      link.toInput = 0;
      link = w.element.out[0];
    }
    link.to = edge.target;
    link.toInput = edge.targetInput;
  }

  private must(name: string): Element {
    const e = this.byName.get(name);
    if (e === undefined) throw new Error(`graph: no element named '${name}'`);
    return e;
  }
}

function edgeKey(e: Element, output: number): string {
  return `${e.name}\u0000${output}`;
}

function onlyOne(names: string[], element: string, what: string): string {
  if (names.length !== 1) throw new Error(`graph: ${element} has ${names.length} ${what}s (${names.join(', ')}): name one`);
  return names[0];
}
