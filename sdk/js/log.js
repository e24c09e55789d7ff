// Log lines, recorded with the invocation (console.log/console.error are captured too).
import { write } from 'fnhost:function/log@0.2.0';

export function debug(message) {
  write('debug', String(message));
}

export function info(message) {
  write('info', String(message));
}

export function warn(message) {
  write('warn', String(message));
}

export function error(message) {
  write('error', String(message));
}
