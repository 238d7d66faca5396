// CUDA's version encoding (cudaRuntimeGetVersion, CUDART_VERSION): 1000 x major + 10 x minor.
import { cudaVersionText } from '../../lib/info';

describe('cudaVersionText', () => {
  it('reads the encoding as CUDA documents it; 0 means none', () => {
    expect(cudaVersionText(12040)).toBe('12.4');
    expect(cudaVersionText(11080)).toBe('11.8');
    expect(cudaVersionText(13000)).toBe('13.0');
    expect(cudaVersionText(12090)).toBe('12.9');
    expect(cudaVersionText(0)).toBeNull();
  });
});
