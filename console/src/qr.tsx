// The pairing link as a QR code, drawn on a canvas (no inline SVG or data: script needed
// under the CSP). Quiet zone of 4 modules (ISO/IEC 18004), dark on light whatever the theme.
import { useEffect, useRef } from 'preact/hooks';
import { encode } from 'uqr';

export function QrCode({ text, label }: { text: string; label: string }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const canvas = ref.current;
    const ctx = canvas?.getContext('2d');
    if (!canvas || !ctx) return;
    const qr = encode(text, { ecc: 'M', border: 4 });
    const scale = Math.max(4, Math.floor(288 / qr.size));
    canvas.width = qr.size * scale;
    canvas.height = qr.size * scale;
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = '#000000';
    qr.data.forEach((row, y) => {
      row.forEach((dark, x) => {
        if (dark) ctx.fillRect(x * scale, y * scale, scale, scale);
      });
    });
  }, [text]);
  return <canvas ref={ref} class="qr" role="img" aria-label={label} data-testid="pair-qr" />;
}
