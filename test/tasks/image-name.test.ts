import { describe, expect, it } from 'vitest';
import { checkImageTemplate, expandImageTemplate, ImageNameError, imageNameFor } from '../../src/tasks/image-name.js';

describe('image names', () => {
  it('swebench: sweb.eval.x86_64.<id lower-cased>:latest', () => {
    expect(imageNameFor('django__django-11099', 'swebench')).toBe('sweb.eval.x86_64.django__django-11099:latest');
    expect(imageNameFor('Project-MONAI__MONAI-3042', 'swebench')).toBe('sweb.eval.x86_64.project-monai__monai-3042:latest');
  });

  it('swebench-hub: swebench/sweb.eval.x86_64.<id, "__" → "_1776_", lower-cased>:latest', () => {
    expect(imageNameFor('django__django-11099', 'swebench-hub')).toBe('swebench/sweb.eval.x86_64.django_1776_django-11099:latest');
    expect(imageNameFor('sympy__sympy-20590', 'swebench-hub')).toBe('swebench/sweb.eval.x86_64.sympy_1776_sympy-20590:latest');
    expect(imageNameFor('Project-MONAI__MONAI-3042', 'mirror.local:5000/{id_swebench}')).toBe(
      'mirror.local:5000/project-monai_1776_monai-3042:latest',
    );
  });

  it('swegym: xingyaoww/sweb.eval.x86_64.<id, "__" → "_s_", lower-cased>:latest', () => {
    expect(imageNameFor('getmoto__moto-5752', 'swegym')).toBe('xingyaoww/sweb.eval.x86_64.getmoto_s_moto-5752:latest');
    expect(imageNameFor('Project-MONAI__MONAI-3042', 'swegym')).toBe('xingyaoww/sweb.eval.x86_64.project-monai_s_monai-3042:latest');
    expect(imageNameFor('pandas-dev__pandas-53672', 'swegym')).toBe('xingyaoww/sweb.eval.x86_64.pandas-dev_s_pandas-53672:latest');
  });

  it('fills templates and adds :latest only when there is no tag', () => {
    expect(imageNameFor('Project-MONAI__MONAI-3042', 'ghcr.io/acme/{id_lower}')).toBe('ghcr.io/acme/project-monai__monai-3042:latest');
    expect(imageNameFor('getmoto__moto-5752', 'mirror/{id_swegym}:v2')).toBe('mirror/getmoto_s_moto-5752:v2');
    expect(imageNameFor('django__django-11099', 'sweb.eval.x86_64.{id}')).toBe('sweb.eval.x86_64.django__django-11099:latest');
    // A registry port is not a tag.
    expect(imageNameFor('django__django-11099', 'localhost:5000/sweb.eval.x86_64.{id_lower}')).toBe('localhost:5000/sweb.eval.x86_64.django__django-11099:latest');
    expect(imageNameFor('django__django-11099', 'localhost:5000/sweb/{id_lower}:2024')).toBe('localhost:5000/sweb/django__django-11099:2024');
    const digest = `registry.example.com:443/sweb@sha256:${'a'.repeat(64)}`;
    expect(imageNameFor('django__django-11099', digest)).toBe(digest);
  });

  it('refuses an unknown placeholder, naming it and the known ones', () => {
    expect(() => imageNameFor('django__django-11099', 'sweb.eval.x86_64.{instance_id}')).toThrow(ImageNameError);
    expect(() => imageNameFor('django__django-11099', 'sweb.eval.x86_64.{instance_id}')).toThrow(
      /unknown placeholder \{instance_id\} \(known: \{id\}, \{id_lower\}, \{id_swebench\}, \{id_swegym\}/,
    );
    expect(() => checkImageTemplate('x/{id_lower')).toThrow('unbalanced { or }');
  });

  it('refuses a name Docker would refuse, e.g. {id} with upper case', () => {
    expect(imageNameFor('django__django-11099', 'x/{id}')).toBe('x/django__django-11099:latest');
    expect(() => imageNameFor('Project-MONAI__MONAI-3042', 'x/{id}')).toThrow(/not a valid image name.*use \{id_lower\}, \{id_swebench\} or \{id_swegym\}/);
    expect(() => checkImageTemplate('My Images/{id_lower}')).toThrow(ImageNameError);
    expect(() => checkImageTemplate('x/{id_lower}:bad tag!')).toThrow(/bad tag/);
  });

  it('checks templates and expands presets', () => {
    expect(() => checkImageTemplate('swebench')).not.toThrow();
    expect(() => checkImageTemplate('swegym')).not.toThrow();
    expect(expandImageTemplate('swegym')).toBe('xingyaoww/sweb.eval.x86_64.{id_swegym}:latest');
    expect(expandImageTemplate('a/{id}')).toBe('a/{id}');
    expect(expandImageTemplate('toString')).toBe('toString');
  });
});
