/** The page's messages: the banner across the top, the notice that fades, and each panel's error line. */
import type { ErrorArea } from '../protocol.ts';
import { $ } from './dom.ts';

const ui = {
  banner: $('banner'), bannerText: $('banner-text'), bannerCpu: $<HTMLButtonElement>('banner-cpu'), bannerGpu: $<HTMLButtonElement>('banner-gpu'),
  notice: $('notice'), noticeText: $('notice-text'), noticeClose: $<HTMLButtonElement>('notice-close'),
  errors: {
    gpu: $('train-error'), data: $('data-error'), model: $('model-error'), train: $('train-error'),
    sample: $('sample-error'), file: $('file-error'), bench: $('bench-error'),
  } satisfies Record<ErrorArea, HTMLElement>,
};

/** The banner's buttons, for the backend panel to wire. */
export const bannerButtons = { cpu: ui.bannerCpu, gpu: ui.bannerGpu };

export function showBanner(text: string, opts: { error?: boolean; cpu?: boolean; gpu?: boolean } = {}): void {
  ui.bannerText.textContent = text;
  ui.banner.classList.toggle('banner-error', Boolean(opts.error));
  ui.bannerCpu.hidden = !opts.cpu;
  ui.bannerGpu.hidden = !opts.gpu;
  ui.banner.hidden = false;
}

export function hideBanner(): void {
  ui.banner.hidden = true;
}

let noticeTimer: number | undefined;
export function notice(message: string): void {
  ui.noticeText.textContent = message;
  ui.notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = window.setTimeout(() => {
    ui.notice.hidden = true;
  }, 20_000);
}

export function showError(area: ErrorArea, message: string): void {
  ui.errors[area].textContent = message;
}

export function clearError(area: ErrorArea): void {
  ui.errors[area].textContent = '';
}

export function errorText(area: ErrorArea): string {
  return ui.errors[area].textContent ?? '';
}

export function initBanner(): void {
  ui.noticeClose.addEventListener('click', () => {
    ui.notice.hidden = true;
  });
}
