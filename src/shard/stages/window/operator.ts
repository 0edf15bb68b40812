/** Picks the window stage of the configured type, once, when the shard is built. */
import type { WindowConfig } from '../../../config/schema.js';
import { SessionStage } from './sessionStage.js';
import { SlidingStage } from './slidingStage.js';
import { type WindowOperator, WindowStage } from './windowStage.js';

export function windowOperator(cfg: WindowConfig): WindowOperator {
  switch (cfg.type) {
    case 'session':
      return new SessionStage(cfg);
    case 'sliding':
      return new SlidingStage(cfg);
    default:
      return new WindowStage(cfg);
  }
}
