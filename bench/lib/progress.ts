/**
 * Progress on stderr, so stdout keeps only the final table: cli-progress bars on a terminal; otherwise
 * (CI, a log file) one plain line per task every 5 s and when it ends.
 */
import cliProgress from 'cli-progress';

export interface Task {
  update(value: number, info?: string): void;
  done(info?: string): void;
}

const PLAIN_EVERY_MS = 5000;

export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private readonly bars = this.tty
    ? new cliProgress.MultiBar(
        {
          stream: process.stderr,
          format: '{label} |{bar}| {percentage}% {value}/{total} {info}',
          barsize: 24,
          hideCursor: true,
          clearOnComplete: false,
          autopadding: true,
        },
        cliProgress.Presets.shades_classic,
      )
    : null;

  task(label: string, total: number): Task {
    const done = (info: string) => this.log(`✔ ${label} ${info}`);
    if (this.bars === null) {
      let last = Date.now();
      return {
        update: (value, info = '') => {
          if (Date.now() - last < PLAIN_EVERY_MS) return;
          last = Date.now();
          this.log(
            `  ${label}: ${Math.round((100 * value) / Math.max(1, total))}% ${value}/${total} ${info}`,
          );
        },
        done: (info = '') => done(info),
      };
    }
    const bars = this.bars;
    const bar = bars.create(total, 0, { label: label.padEnd(30), info: '' });
    return {
      update: (value, info = '') => bar.update(value, { info }),
      done: (info = '') => {
        bars.remove(bar);
        done(info);
      },
    };
  }

  log(line: string): void {
    if (this.bars !== null) this.bars.log(`${line}\n`);
    else process.stderr.write(`${line}\n`);
  }

  stop(): void {
    this.bars?.stop();
  }
}
