/** Messages between the codec pool and its workers. */
export type CodecRequest =
  | { id: number; op: 'hash'; buf: ArrayBuffer; lens: number[] }
  | { id: number; op: 'encode'; buf: ArrayBuffer; lens: number[]; level: number }
  | { id: number; op: 'decode'; buf: ArrayBuffer; lens: number[]; fps: ArrayBuffer };

export type CodecResponse =
  | { kind: 'hashed'; fps: ArrayBuffer }
  | { kind: 'encoded'; buf: ArrayBuffer; lens: number[] }
  | { kind: 'decoded'; buf: ArrayBuffer; lens: number[]; errors: (string | null)[] }
  | { kind: 'failed'; message: string };
