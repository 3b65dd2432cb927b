import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';

/** How the hostile name server answers one name. Names it does not know get NXDOMAIN. */
export type DnsBehaviour =
  | { a?: string[]; aaaa?: string[]; cname?: string }
  | { rcode: 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED' }
  | { silent: true };

/**
 * A name server on loopback that answers as an attacker's would: private and metadata addresses, mixed
 * pools, CNAMEs into private space, IPv4-embedding IPv6 answers, errors, and silence. It counts queries
 * per name so a test can tell the crawler asked, and only asked what it had to.
 */
export async function startHostileDns(table: Record<string, DnsBehaviour>) {
  const queries = new Map<string, number>();
  const socket = dgram.createSocket('udp4');
  socket.on('message', (msg, rinfo) => {
    let query: dnsPacket.Packet;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return;
    }
    const question = query.questions?.[0];
    if (!question) return;
    const name = question.name.toLowerCase();
    queries.set(name, (queries.get(name) ?? 0) + 1);
    const behaviour = table[name] ?? { rcode: 'NXDOMAIN' as const };
    if ('silent' in behaviour) return;
    const answers: dnsPacket.Answer[] = [];
    let rcode: string = 'NOERROR';
    if ('rcode' in behaviour) rcode = behaviour.rcode;
    else {
      let owner = question.name;
      if (behaviour.cname) {
        answers.push({ type: 'CNAME', name: owner, ttl: 1, data: behaviour.cname });
        owner = behaviour.cname;
      }
      if (question.type === 'A')
        for (const data of behaviour.a ?? []) answers.push({ type: 'A', name: owner, ttl: 1, data });
      if (question.type === 'AAAA')
        for (const data of behaviour.aaaa ?? []) answers.push({ type: 'AAAA', name: owner, ttl: 1, data });
    }
    const reply = dnsPacket.encode({
      type: 'response',
      id: query.id,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | rcodeFlag(rcode),
      questions: query.questions,
      answers,
    });
    socket.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  return {
    server: `127.0.0.1:${socket.address().port}`,
    queries,
    stop: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

function rcodeFlag(rcode: string): number {
  return { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 }[rcode] ?? 0;
}
