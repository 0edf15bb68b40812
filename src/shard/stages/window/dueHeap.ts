/**
 * A binary min-heap of items by their `due` time: what the session and sliding stages close from. Items
 * are the stages' own objects (a session, a key's pending windows), so there is no entry per push; a stage
 * keeps each item in the heap at most once and re-pushes a popped item whose due time moved on (lazy
 * re-insertion: an event extending a session costs nothing here).
 *
 *   items   [ 3 ][ 5 ][ 4 ][ 9 ][ 7 ]      items[i] <= items[2i + 1], items[2i + 2] by `due`
 */
export interface Due {
  /** The time the item was pushed with; not to be changed while it is in the heap. */
  due: number;
}

export class DueHeap<T extends Due> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  /** The item with the earliest `due`, or undefined. */
  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const a = this.items;
    let i = a.length;
    a.push(item);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = a[p] as T;
      if (parent.due <= item.due) break;
      a[i] = parent;
      i = p;
    }
    a[i] = item;
  }

  pop(): T | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (top === undefined || last === undefined || a.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= a.length) break;
      const r = l + 1;
      const c = r < a.length && (a[r] as T).due < (a[l] as T).due ? r : l;
      if ((a[c] as T).due >= last.due) break;
      a[i] = a[c] as T;
      i = c;
    }
    a[i] = last;
    return top;
  }
}
